#!/usr/bin/env bash
# Installs Garage 2.5.0 (an independent S3 server that checks SigV4) for the tests
# against a second real server, when it is missing, and prints the binary's path.
#
# Built from the Rust registry (needs a C compiler for its bundled libsodium and LMDB)
# into ${SENSORLAKE_TOOLS:-$HOME/.cache/sensorlake}/garage-2.5.0, so later runs and other
# clones on this machine reuse it. A full release build takes about an hour on two
# busy cores; the cheaper profile below (opt-level 1, no LTO, many codegen units, no
# debug info) keeps it near a quarter of that. Tests only need it to be correct, not fast.
set -euo pipefail
version=2.5.0
tools=${SENSORLAKE_TOOLS:-$HOME/.cache/sensorlake}
root="$tools/garage-$version"
bin="$root/bin/garage"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$version"; then
  echo "$bin"
  exit 0
fi
mkdir -p "$root"
echo "building Garage $version into $root (first run only)" >&2
start=$(date +%s)
CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
CARGO_PROFILE_RELEASE_LTO=false \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_INCREMENTAL=false \
  cargo install garage --version "$version" --locked --root "$root" \
    --no-default-features --features bundled-libs,lmdb >&2
echo "Garage $version built in $(( $(date +%s) - start )) s" >&2
"$bin" --version >&2
echo "$bin"
