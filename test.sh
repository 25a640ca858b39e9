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
# An already-installed toolchain does not get the file's components and targets: add them.
rustup component add rustfmt clippy rust-src >/dev/null
rustup target add i686-unknown-linux-gnu >/dev/null
rustup show active-toolchain

step "Debian packages (gcc-multilib for the 32-bit test run)"
need_apt=()
dpkg -s gcc-multilib >/dev/null 2>&1 || need_apt+=(gcc-multilib)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get install -y "${need_apt[@]}" || { $sudo_cmd apt-get update && $sudo_cmd apt-get install -y "${need_apt[@]}"; }
fi

step "Python venv (python/requirements.txt): pyarrow, DuckDB, Polars for the interoperability check; ESP-IDF's NVS generator for the provisioning test"
# Created when missing, reinstalled when the requirements change. No Python or a failed
# install fails the run: the check never skips.
command -v python3 >/dev/null 2>&1 || { echo "python3 is required (interoperability and provisioning checks)" >&2; exit 1; }
# Spark is optional: installed (and then required to work) when Java is present.
requirements=(python/requirements.txt)
interop_args=()
if java -version >/dev/null 2>&1; then
  requirements+=(python/requirements-spark.txt)
  interop_args+=(--spark)
else
  echo "no Java: the interoperability check runs without Spark"
fi
want=$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)
have=$(cat .venv/requirements.sha256 2>/dev/null || true)
if [ ! -x .venv/bin/python ] || [ "$want" != "$have" ]; then
  rm -rf .venv
  python3 -m venv .venv
  for r in "${requirements[@]}"; do
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$r"
  done
  echo "$want" > .venv/requirements.sha256
fi

step "Garage 2.5.0, the second real S3 server the tests run against (built once, then reused)"
# Built from the Rust registry into ~/.cache/sensorlake (SENSORLAKE_TOOLS moves it); a
# failed build fails the run: the Garage tests never skip.
SENSORLAKE_GARAGE=$(scripts/install-garage.sh)
export SENSORLAKE_GARAGE
"$SENSORLAKE_GARAGE" --version

step "Formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace"
cargo test --workspace --locked

step "Library tests on a 32-bit target (i686, device feature set)"
cargo test -p sensorlake --no-default-features --features device --target i686-unknown-linux-gnu --locked

step "The device feature set pulls no parquet, url, idna or jiff (cargo tree)"
scripts/device-deps.sh

step "Device library built for ESP-IDF (riscv32imc-esp-espidf proxy, -Z build-std)"
scripts/esp-proxy-build.sh

step "Flash budgets on ESP-IDF (riscv32imc-esp-espidf, min-size, rust-lld): the 8807944 baseline reproduced, then firmware-loops <= 400 KiB and encode + presign <= 150 KiB over hello"
scripts/device-size.sh

step "The README's main command, as written (debug build, shorter run)"
cargo run --locked -p sensorlake-cli -- demo --duration 1h --dir target/readme-demo --clean

step "Interoperability: pyarrow, DuckDB and Polars read what sensorlake writes"
cargo build --locked -p sensorlake-cli --bin sensorlake
.venv/bin/python python/interop_check.py --bin target/debug/sensorlake "${interop_args[@]}"

step "Differential: random CSVs are stored exactly (pyarrow, DuckDB, Polars) or refused at their first bad line"
# Seed printed; SENSORLAKE_DIFF_SEED=N changes it, SENSORLAKE_DIFF_COUNT=N the number of inputs.
.venv/bin/python python/differential_check.py --bin target/debug/sensorlake

step "Documentation: every relative link names a file and heading that exist"
scripts/check-doc-links.sh

echo
echo "All checks passed."
