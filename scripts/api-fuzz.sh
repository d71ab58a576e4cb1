#!/usr/bin/env bash
# API fuzzing: schemathesis (from PyPI, pinned in api-fuzz-requirements.txt)
# against /api/openapi.json of a real cardex server on a fresh data dir.
# It fails on any 5xx, an undocumented status code, content type or header,
# a response that does not match its schema, a schema-violating request that
# is accepted, and a resource still there after DELETE.
#
# `positive_data_acceptance` is left out on purpose: the API has rules that
# JSON Schema cannot state (field names unique regardless of case, an engine
# that is configured), and it answers those with a 422 by design.
#
# Usage: scripts/api-fuzz.sh [examples per operation, default 40]
# Env: CARDEX_BIN (default target/debug/cardex), CARDEX_FUZZ_SEED.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CARDEX_BIN:-$root/target/debug/cardex}
venv=$root/target/api-fuzz-venv
examples=${1:-40}
seed=${CARDEX_FUZZ_SEED:-20261125}

if ! "$venv/bin/st" --version >/dev/null 2>&1; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/api-fuzz-requirements.txt"
fi

work=$(mktemp -d)
"$bin" serve --data-dir "$work/data" --bind 127.0.0.1:0 >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
url=
for _ in $(seq 300); do
	url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/server.log" | head -n 1 || true)
	[ -n "$url" ] && break
	if ! kill -0 $server 2>/dev/null; then
		cat "$work/server.log"
		exit 1
	fi
	sleep 0.1
done
[ -n "$url" ] || { echo "cardex did not start" >&2; exit 1; }

echo "schemathesis against $url/api/openapi.json ($examples examples an operation, seed $seed)"
status=0
cd "$work" # schemathesis leaves a cache folder in the working dir
"$venv/bin/st" run "$url/api/openapi.json" \
	--checks all --exclude-checks positive_data_acceptance \
	--max-examples "$examples" --seed "$seed" \
	--generation-database none --no-color \
	--report-dir "$work/report" || status=$?
if grep -q "panicked" "$work/server.log"; then
	echo "the server panicked:" >&2
	grep -A 5 "panicked" "$work/server.log" >&2
	status=1
fi
if ! kill -0 $server 2>/dev/null; then
	echo "the server died during the run" >&2
	status=1
fi
exit $status
