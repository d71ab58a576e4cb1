# cardex: `make run` to start the server, `make test` to run every check.
# Both install what is missing first (see scripts/deps.sh).

SHELL := /bin/bash
CARGO ?= cargo
DATA_DIR ?= ./cardex-data
BIND ?= 127.0.0.1:8080
# Tesseract's OpenMP threads fight over few cores; one per OCR worker.
export OMP_THREAD_LIMIT ?= 1

.PHONY: run test bench deps test-deps build lint fmt

## run: install what is missing, build (release) and start the server
run: deps build
	./target/release/cardex serve --data-dir $(DATA_DIR) --bind $(BIND)

build:
	$(CARGO) build --release --locked -p cardex

deps:
	@scripts/deps.sh run

test-deps:
	@scripts/deps.sh test

## test: formatting, lints, and every test
test: test-deps lint
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast; \
	fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: release-build benchmarks; prints a table and writes bench/results.md
bench: deps
	$(CARGO) build --release --locked -p cardex -p cardex-bench -p vlm-sim
	./target/release/cardex-bench
