#!/usr/bin/env bash
# Installs what cardex needs on a Debian/Ubuntu machine, and only what is
# missing. Usage: scripts/deps.sh run|bench|test
#   run   what `make run` needs: a C compiler (bundled SQLite), Rust,
#         Tesseract with English, German, French and Italian data and what
#         its Rust binding builds with, libjpeg-turbo's TurboJPEG, poppler's
#         command-line tools (PDF uploads)
#   bench also the DejaVu fonts the benchmarks' synthetic cards are set in
#   test  also what `make test` needs: the same fonts, Debian's Chromium
#         for the browser tests, Python 3 with venv for the API fuzzer
#         (schemathesis), cargo-nextest (optional, falls back to cargo test); cargo-deny is
#         installed by scripts/audit.sh
# All also need Node.js 20 or newer with npm, for the web UI; its npm
# packages are installed from web/package-lock.json when missing.
# System packages are installed with apt-get when running as root or with
# password-less sudo; otherwise the script names them and stops.
set -euo pipefail

want=${1:-run}
# German, French and Italian beside English: the languages of most catalog
# cards; a batch picks its own (its `ocr_lang`). libturbojpeg0-dev:
# libjpeg-turbo's TurboJPEG (2.x), which decodes large JPEG scans already
# reduced for the model (cardex-engine's turbo.rs). poppler-utils: pdfinfo,
# pdfimages and pdftoppm, which split uploaded PDFs into pages
# (cardex-engine's pages/pdf.rs).
packages=(build-essential pkg-config libclang-dev libtesseract-dev libleptonica-dev tesseract-ocr
  tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-ita libturbojpeg0-dev
  poppler-utils)
# DejaVu: the synthetic cards of the cross-check's test and benchmark.
[ "$want" = run ] || packages+=(fonts-dejavu-core)
if [ "$want" = test ]; then
  packages+=(chromium)
  python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3 python3-venv)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo)
  else
    echo "cardex needs these Debian packages: ${missing[*]}" >&2
    echo "Install them with:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "Installing ${missing[*]} ..."
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "cardex needs Rust 1.85 or newer (Debian's own rustc is too old)." >&2
  echo "Install it from https://rustup.rs, then run make again." >&2
  exit 1
fi
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "$rust_minor" -lt 85 ]; then
  echo "cardex needs Rust 1.85 or newer; this is $(rustc --version). Run: rustup update" >&2
  exit 1
fi

if [ "$want" = test ]; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt 2>/dev/null || true
fi

if ! command -v npm >/dev/null || ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
  echo "cardex's web UI needs Node.js 20 or newer with npm (found: $(node --version 2>/dev/null || echo none))." >&2
  echo "Install it from https://nodejs.org or your distribution's backports, then run make again." >&2
  exit 1
fi
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$here/web/node_modules" ] || [ "$here/web/package-lock.json" -nt "$here/web/node_modules/.package-lock.json" ]; then
  echo "Installing the web UI's npm packages ..."
  (cd "$here/web" && npm ci --no-audit --no-fund)
fi
