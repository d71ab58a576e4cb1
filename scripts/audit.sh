#!/usr/bin/env bash
# The dependency check of `make test`: cargo-deny (installed from crates.io
# when missing) over Cargo.lock, configured in deny.toml.
# - licenses, bans (no wildcard versions) and sources (crates.io only):
#   always;
# - advisories (RustSec: vulnerable, unmaintained or yanked crates):
#   whenever the advisory database can be fetched from GitHub. Where it
#   cannot (this project's CI reaches package registries only), the step
#   says so and the rest still runs; CARDEX_REQUIRE_ADVISORIES=1 makes that
#   an error instead.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $version" ]; then
	echo "installing cargo-deny $version from crates.io"
	cargo install --locked --quiet cargo-deny --version "$version"
fi
cargo deny --locked check bans licenses sources
if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
	cargo deny --locked check advisories
else
	message="advisories NOT checked: the RustSec database (github.com/rustsec/advisory-db) cannot be fetched from this machine"
	if [ "${CARDEX_REQUIRE_ADVISORIES:-0}" = 1 ]; then
		echo "error: $message" >&2
		exit 1
	fi
	echo "warning: $message" >&2
fi
