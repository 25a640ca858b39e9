#!/usr/bin/env bash
# Builds the device library, with exactly the firmware's feature set, for the tier-3
# ESP-IDF target riscv32imc-esp-espidf (ESP32-C3) with -Z build-std. This is a proxy for
# the Xtensa ESP32-S3 build (which needs the esp toolchain and the ESP-IDF SDK): a 32-bit
# ESP-IDF std target that proves the library and its dependencies compile for ESP-IDF.
#
# Toolchain: 1.98.0, not the workspace's 1.99.1, because std 1.99.1 itself does not
# compile for *-espidf (std/src/sys/fs/unix.rs uses libc::AT_FDCWD, which the libc
# pinned by std lacks for ESP-IDF). RUSTC_BOOTSTRAP=1 enables -Z build-std on stable.
set -euo pipefail
cd "$(dirname "$0")/.."
toolchain=${ESP_PROXY_TOOLCHAIN:-1.98.0}
rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
rustup component add rust-src --toolchain "$toolchain" >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=target/esp-proxy cargo +"$toolchain" build \
  -Z build-std=std,panic_abort --target riscv32imc-esp-espidf \
  -p sensorlake --no-default-features --features device --locked "$@" 2>&1 | tee "$log"
# Code that only compiles on ESP-IDF must be as clean as the rest.
if grep -q '^warning: `sensorlake` (lib) generated' "$log"; then
  echo "error: the device library has warnings on riscv32imc-esp-espidf" >&2
  exit 1
fi
