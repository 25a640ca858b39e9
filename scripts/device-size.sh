#!/usr/bin/env bash
# Flash cost of the device library on a 32-bit ESP-IDF target, checked against budgets.
#
# The size probes (crates/size-probe) are built for riscv32imc-esp-espidf (ESP32-C3,
# the proxy of the firmware's ESP32-S3; see scripts/esp-proxy-build.sh) with toolchain
# 1.98.0, -Z build-std=std,panic_abort and profile min-size (opt-level "s", fat LTO,
# one codegen unit, panic abort), and linked by rust-lld with --gc-sections from `main`,
# the ESP-IDF/newlib symbols left unresolved (there is no ESP-IDF SDK here). A probe's
# size is .text + .rodata + .data of its ELF; what the library costs is a probe's size
# minus hello's (std's runtime and formatting).
#
# 1. Reproduces the baseline of issue 12 at commit 8807944 (firmware-loops 1,294,196 B
#    over hello, +-5%), from `git archive` of that commit: the method still measures
#    what it measured then.
# 2. Measures the working tree and checks the budgets:
#      firmware-loops          <= 400 KiB over hello
#      encode-presign          <= 150 KiB over hello
# 3. In both builds, every probe's ELF must hold the library's symbols it exists for
#    (signer, encoder, uploader...): a probe the linker emptied cannot pass.
# 4. Prints the per-crate table (llvm-nm sizes of the demangled symbols, by crate).
#
# Exits non-zero on a failed budget, a baseline off by more than 5%, or a missing symbol.
# Both commits share one target dir (std and the common dependencies are built once).
#
#   scripts/device-size.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
toolchain=${ESP_PROXY_TOOLCHAIN:-1.98.0}
triple=riscv32imc-esp-espidf
baseline=8807944
baseline_commit=88079447a9a40dfda5eca8bde625679d316caf10
baseline_over_hello=1294196 # firmware-loops - hello at $baseline, issue 12
budget_firmware=$((400 * 1024))
budget_encode=$((150 * 1024))
probes=(hello presign encode-presign firmware-loops)
work=$root/target/device-size

rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
rustup component add rust-src llvm-tools --toolchain "$toolchain" >/dev/null
host=$(rustc +"$toolchain" -vV | sed -n 's/^host: //p')
tools=$(rustc +"$toolchain" --print sysroot)/lib/rustlib/$host/bin
nm_=$tools/llvm-nm
size_=$tools/llvm-size

# build SRC_DIR TAG: the probes of the workspace at SRC_DIR, copied to $work/elf/TAG.
build() {
  local src=$1 tag=$2
  (
    cd "$src"
    env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS \
      RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$work/cargo" \
      CARGO_PROFILE_MIN_SIZE_STRIP=false \
      CARGO_TARGET_RISCV32IMC_ESP_ESPIDF_LINKER=rust-lld \
      CARGO_TARGET_RISCV32IMC_ESP_ESPIDF_RUSTFLAGS="-C linker-flavor=ld.lld -C link-arg=--gc-sections -C link-arg=--unresolved-symbols=ignore-all -C link-arg=--entry=main" \
      cargo +"$toolchain" build --quiet --locked -Z build-std=std,panic_abort \
      --target "$triple" --profile min-size -p size-probe "${probes[@]/#/--bin=}"
  )
  # One target dir for both commits: each build (fresh or not) links its own probes
  # into min-size/, so they are copied out before the next build.
  mkdir -p "$work/elf/$tag"
  for p in "${probes[@]}"; do
    cp "$work/cargo/$triple/min-size/$p" "$work/elf/$tag/$p"
  done
}

# flash ELF: .text + .rodata + .data. Any other allocated section fails the run (it
# would be flash or RAM that the sum leaves out).
flash() {
  "$size_" -A "$1" | awk -v f="$1" '
    NR <= 2 || NF < 3 || $1 == "Total" { next }
    $1 == ".text" || $1 == ".rodata" || $1 == ".data" { s += $2; next }
    $1 == ".bss" || $1 == ".comment" || $1 == ".riscv.attributes" { next }
    { printf "error: %s has section %s (%d B) that the size does not count\n", f, $1, $2 > "/dev/stderr"; bad = 1 }
    END { if (bad) exit 1; print s }'
}

# What each probe exists for, as demangled-symbol substrings present in both commits.
signer=("sensorlake::presign::" "sha2::sha256::" "md5::compress")
encoder=("sensorlake::pqwrite::FileWriter" "lz4_flex::block::")
uploader=("sensorlake::uploader::Uploader" "sensorlake::broker_client::BrokerClient" "sensorlake::spool::Spool" "sensorlake::device::Sampler")
required() {
  case $1 in
    presign) printf '%s\n' "${signer[@]}" ;;
    encode-presign) printf '%s\n' "${signer[@]}" "${encoder[@]}" ;;
    firmware-loops) printf '%s\n' "${signer[@]}" "${encoder[@]}" "${uploader[@]}" ;;
  esac
}

failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

# measure TAG: prints the size table of $work/elf/TAG, sets size_<probe>, checks symbols.
declare -A size
measure() {
  local tag=$1 p s syms need hello
  for p in "${probes[@]}"; do
    size[$tag/$p]=$(flash "$work/elf/$tag/$p")
    syms=$("$nm_" -C --defined-only "$work/elf/$tag/$p")
    while IFS= read -r need; do
      [ -n "$need" ] || continue
      grep -qF -- "$need" <<<"$syms" || fail "$tag: $p has no symbol containing '$need' (probe emptied?)"
    done < <(required "$p")
    # The check can fail: hello (std only) holds none of these symbols.
    if [ "$p" = hello ]; then
      while IFS= read -r need; do
        ! grep -qF -- "$need" <<<"$syms" || fail "$tag: hello has a symbol containing '$need': the check proves nothing"
      done < <(required firmware-loops)
    fi
  done
  hello=${size[$tag/hello]}
  echo "| probe | bytes (.text+.rodata+.data) | over hello |"
  echo "|---|---:|---:|"
  for p in "${probes[@]}"; do
    s=${size[$tag/$p]}
    awk -v p="$p" -v s="$s" -v h="$hello" 'BEGIN { printf "| %s | %d | %d (%.1f KiB) |\n", p, s, s - h, (s - h) / 1024 }'
  done
}

start=$(date +%s)
echo "## Baseline: commit $baseline (issue 12: firmware-loops $baseline_over_hello B over hello)"
echo
if ! git rev-parse --verify --quiet "$baseline_commit^{commit}" >/dev/null; then
  echo "error: commit $baseline is not in this clone (a shallow clone? git fetch --unshallow)" >&2
  exit 1
fi
src=$work/src-$baseline
if [ ! -f "$src/Cargo.lock" ]; then
  rm -rf "$src" && mkdir -p "$src"
  git archive "$baseline_commit" | tar -x -C "$src"
fi
t0=$(date +%s)
build "$src" "$baseline"
echo "(built in $(($(date +%s) - t0)) s)"
echo
measure "$baseline"
over=$((size[$baseline/firmware-loops] - size[$baseline/hello]))
echo
awk -v o="$over" -v b="$baseline_over_hello" 'BEGIN { printf "baseline firmware-loops over hello: %d B, issue 12 says %d B (%+.2f%%, allowed +-5%%)\n", o, b, (o - b) * 100 / b }'
if [ $(((over - baseline_over_hello) * 20)) -gt "$baseline_over_hello" ] ||
  [ $(((baseline_over_hello - over) * 20)) -gt "$baseline_over_hello" ]; then
  fail "the baseline is not reproduced: the method no longer measures what issue 12 measured"
fi

echo
echo "## Working tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates Cargo.toml Cargo.lock || echo ", modified"))"
echo
t0=$(date +%s)
build "$root" head
echo "(built in $(($(date +%s) - t0)) s)"
echo
measure head
fl=$((size[head/firmware-loops] - size[head/hello]))
ep=$((size[head/encode-presign] - size[head/hello]))
echo
printf 'budget firmware-loops - hello: %d B <= %d B (400 KiB): ' "$fl" "$budget_firmware"
if [ "$fl" -le "$budget_firmware" ]; then echo ok; else echo OVER; fail "firmware-loops is $((fl - budget_firmware)) B over its budget"; fi
printf 'budget encode-presign - hello: %d B <= %d B (150 KiB): ' "$ep" "$budget_encode"
if [ "$ep" -le "$budget_encode" ]; then echo ok; else echo OVER; fail "encode-presign is $((ep - budget_encode)) B over its budget"; fi

# Per crate: sized symbols of .text/.rodata/.data by the first path segment of the
# demangled name (`<a::B as c::D>::f` counts for a; generic std code instantiated for
# the library counts for std/core/alloc, as in cargo bloat). Names without a path are
# C-ABI symbols (compiler_builtins, std's libc shims); bytes in no sized symbol (string
# literals, anonymous constants, alignment) are one row of their own. With depth 2 the
# rows are modules (crate::module).
#
# owners TAG PROBE DEPTH: "owner<TAB>bytes" lines whose sum is the probe's size.
owners() {
  "$nm_" -C --print-size --defined-only "$work/elf/$1/$2" | awk -v total="${size[$1/$2]}" -v depth="$3" '
    function hex(s,   i, n) { n = 0; s = tolower(s); for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return n }
    function strip(n) { while (n ~ /^(<|&|\*const |\*mut |mut |dyn |\[|\()/) sub(/^(<|&|\*const |\*mut |mut |dyn |\[|\()/, "", n); return n }
    function path(n) {
      if (depth > 1 && match(n, /^[A-Za-z_][A-Za-z0-9_]*::[A-Za-z_][A-Za-z0-9_]*::/)) return substr(n, 1, RLENGTH - 2)
      if (match(n, /^[A-Za-z_][A-Za-z0-9_]*::/)) return substr(n, 1, RLENGTH - 2)
      return ""
    }
    function owner(n,   m, len) {
      if (n ~ /^\.Lanon\./) return anon
      if (n ~ /^\.L/) {
        # .Lswitch.table.<v0 name>: the first crate root C[s<id>_]<len><name>.
        if (match(n, /C(s[0-9A-Za-z]*_)?[0-9]+/)) {
          m = substr(n, RSTART + 1, RLENGTH - 1); sub(/^s[0-9A-Za-z]*_/, "", m); len = m + 0
          return substr(n, RSTART + RLENGTH, len)
        }
        return anon
      }
      n = strip(n)
      if ((m = path(n)) != "") return m
      # <u8 as core::fmt::Debug>::fmt: a primitive type, the trait'"'"'s crate.
      if (match(n, / as /) && (m = path(strip(substr(n, RSTART + 4)))) != "") return m
      return "(C-ABI functions: main, compiler_builtins intrinsics)"
    }
    BEGIN { anon = "(literals, anonymous constants, padding)" }
    NF >= 4 && $3 ~ /^[tTrRdD]$/ {
      sz = hex($2)
      name = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", name)
      by[o = owner(name)] += sz; sum += sz
    }
    END {
      for (o in by) if (o != anon) printf "%s\t%d\n", o, by[o]
      printf "%s\t%d\n", anon, total - sum + by[anon]
    }'
}

# table TAG DEPTH MIN PROBES...: bytes per owner in each probe, sorted by the last
# probe minus the first; owners whose difference is under MIN bytes are one row.
table() {
  local tag=$1 depth=$2 min=$3 p
  shift 3
  for p in "$@"; do owners "$tag" "$p" "$depth" | sed "s/^/$p\t/"; done | awk -F'\t' -v probes="$*" -v min="$min" '
    BEGIN { n = split(probes, P, " ") }
    { v[$2, $1] = $3; own[$2] = 1 }
    END {
      for (o in own) {
        d = v[o, P[n]] - v[o, P[1]]
        if (min > 0 && d < min && d > -min) { for (i = 1; i <= n; i++) small[i] += v[o, P[i]]; k++; continue }
        line = d "\t" o; for (i = 1; i <= n; i++) line = line "\t" (v[o, P[i]] + 0); print line
      }
      if (k) { line = "-999999999\t(" k " more, each under " min " B of difference)"; for (i = 1; i <= n; i++) line = line "\t" small[i]; print line }
    }' | sort -t"$(printf '\t')" -k1,1nr | awk -F'\t' -v probes="$*" -v depth="$depth" '
    BEGIN {
      n = split(probes, P, " ")
      h = "| " (depth > 1 ? "module" : "crate"); r = "|---"
      for (i = 1; i <= n; i++) { h = h " | " P[i]; r = r "|---:" }
      print h " | " P[n] " - " P[1] " |"; print r "|---:|"
    }
    {
      line = "| " $2; for (i = 1; i <= n; i++) { line = line " | " $(i + 2); t[i] += $(i + 2) }
      print line " | " ($(n + 2) - $3) " |"
    }
    END { line = "| **total**"; for (i = 1; i <= n; i++) line = line " | " t[i]; print line " | " (t[n] - t[1]) " |" }'
}
echo
echo "## Per crate (working tree, bytes of .text+.rodata+.data)"
echo
table head 1 0 hello presign encode-presign firmware-loops
echo
echo "## Per module, firmware-loops over hello (working tree, bytes of .text+.rodata+.data)"
echo
table head 2 1024 hello firmware-loops

echo
echo "(device-size: $(($(date +%s) - start)) s)"
if [ "$failed" -ne 0 ]; then
  echo "device-size: FAILED" >&2
  exit 1
fi
echo "device-size: budgets met, baseline reproduced, every probe holds the library's symbols"
