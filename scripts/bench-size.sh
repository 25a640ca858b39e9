#!/usr/bin/env bash
# Marginal code size of the device library on the host: size-optimised binaries
# (profile min-size: opt-level "s", LTO, codegen-units 1, panic = "abort", stripped)
# that print hello, presign one PUT, or encode one 178-row file and presign it, with
# sensorlake's writer or with the parquet crate's (ReferenceEncoder). Then, if
# cargo-bloat is installed, the per-crate breakdown of the encode + presign binary.
# Then the device numbers and their budgets: scripts/device-size.sh (riscv32 ESP-IDF
# target; what CI checks). SKIP_DEVICE_SIZE=1 leaves them out.
#
#   scripts/bench-size.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet --profile min-size -p size-probe
# The parquet-crate probe needs sensorlake's host feature; built on its own so the
# other probes keep the firmware's feature set.
cargo build --locked --quiet --profile min-size -p size-probe --features parquet-reference --bin encode-presign-parquet
dir=target/min-size
size_of() { stat -c %s "$dir/$1"; }
hello=$(size_of hello)
echo "## Code size (x86_64 host, profile min-size, stripped)"
echo
echo "| binary | bytes | minus hello world |"
echo "|---|---:|---:|"
for bin in hello presign encode-presign encode-presign-parquet firmware-loops; do
  s=$(size_of "$bin")
  echo "| $bin | $s | $((s - hello)) |"
done
echo
echo "encode (sensorlake writer, lz4 only: the device feature set) = encode-presign - presign: $(( $(size_of encode-presign) - $(size_of presign) )) bytes"
echo "encode (parquet crate writer) = encode-presign-parquet - presign: $(( $(size_of encode-presign-parquet) - $(size_of presign) )) bytes"
echo "ESP32-S3 firmware's library code (settings, sensors, spool, held rows, clock, both loops, broker client) = firmware-loops - hello: $(( $(size_of firmware-loops) - hello )) bytes"
if cargo bloat --version >/dev/null 2>&1; then
  echo
  echo "## cargo bloat --crates (encode-presign, min-size without strip)"
  echo
  CARGO_PROFILE_MIN_SIZE_STRIP=false cargo bloat --locked --profile min-size -p size-probe \
    --bin encode-presign --crates -n 12 2>/dev/null
else
  echo
  echo "(cargo-bloat not installed: cargo install cargo-bloat for the per-crate breakdown)"
fi
if [ "${SKIP_DEVICE_SIZE:-0}" != 1 ]; then
  echo
  scripts/device-size.sh
fi
