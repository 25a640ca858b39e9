#!/usr/bin/env bash
# The device feature set (what the firmware links) must pull none of the crates the
# host alone needs: parquet (≈ 560 KB of flash on riscv32), url and idna (Unicode
# tables), jiff. Prints the offenders with the paths that pull them in, and fails.
#
#   scripts/device-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden=(parquet url idna jiff)
tree=$(cargo tree --locked -p sensorlake --no-default-features --features device \
  -e normal --target riscv32imc-esp-espidf --prefix none)
status=0
for crate in "${forbidden[@]}"; do
  if grep -q "^$crate v" <<<"$tree"; then
    echo "error: the device feature set pulls $crate:" >&2
    cargo tree --locked -p sensorlake --no-default-features --features device \
      -e normal --target riscv32imc-esp-espidf -i "$crate" >&2
    status=1
  fi
done
if [ "$status" -eq 0 ]; then
  echo "device dependencies: none of ${forbidden[*]}"
fi
exit "$status"
