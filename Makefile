# cardex: `make run` to start the server, `make test` to run every check.
# Both install what is missing first (see scripts/deps.sh).

SHELL := /bin/bash
CARGO ?= cargo
DATA_DIR ?= ./cardex-data
BIND ?= 127.0.0.1:8080
# Tesseract's OpenMP threads fight over few cores; one per OCR worker.
export OMP_THREAD_LIMIT ?= 1

.PHONY: run test bench deps test-deps build web lint fmt audit test-rust test-api test-web

## run: install what is missing, build (release) and start the server
run: deps build
	./target/release/cardex serve --data-dir $(DATA_DIR) --bind $(BIND)

build:
	$(CARGO) build --release --locked -p cardex
	$(MAKE) web CARDEX_BIN=./target/release/cardex

## web: the UI's API types from the server's OpenAPI document, then web/dist
CARDEX_BIN ?= ./target/release/cardex
web:
	$(CARDEX_BIN) openapi > web/openapi.json
	cd web && npm run --silent gen:api && npm run --silent build

deps:
	@scripts/deps.sh run

test-deps:
	@scripts/deps.sh test

## test: formatting, lints, and every test: Rust, the UI's unit tests, and
## the browser end-to-end tests (real binary, simulator, Debian's Chromium)
test: test-deps lint
	$(MAKE) audit
	$(MAKE) test-rust
	$(MAKE) test-api
	$(MAKE) test-web

## audit: the dependency tree's advisories, licenses and sources (cargo-deny)
audit:
	scripts/audit.sh

## test-api: schemathesis against the real server's OpenAPI document
test-api:
	$(CARGO) build --locked -p cardex
	scripts/api-fuzz.sh

test-rust:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast; \
	fi

test-web:
	$(CARGO) build --locked -p cardex -p vlm-sim
	$(MAKE) web CARDEX_BIN=./target/debug/cardex
	cd web && npx vitest run
	@# On failure, print each failed test's page snapshot: CI keeps only the log.
	cd web && npx playwright test || { \
		for f in test-results/*/error-context.md; do [ -f "$$f" ] && echo "== $$f" && cat "$$f"; done; \
		exit 1; }

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: release-build benchmarks; prints a table and writes bench/results.md
bench:
	@scripts/deps.sh bench
	$(CARGO) build --release --locked -p cardex -p cardex-bench -p vlm-sim
	./target/release/cardex-bench
