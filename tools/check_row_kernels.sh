#!/usr/bin/env bash
# The row kernels (src/cprop/_kernels/_rows.h, _vecmath.h) built as plain C once per code path
# and run (tools/row_kernels_check.c): GCC's vector extensions and MSVC's path (CPROP_MSVC_PATH:
# SSE2/AVX2 intrinsics, CPUID), each on AVX2 and forced onto SSE2 (CPROP_NO_AVX2=1); then, if an
# aarch64 cross compiler and qemu-aarch64 are installed, the NEON build and MSVC's path there
# (the scalar loops) under emulation:
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
# Every build must print the same hash (the same bits). Not run by CI (the Python tests compare
# the x86-64 builds: CI's debug build is MSVC's path); for a change to _vops.h or the kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
src=tools/row_kernels_check.c
inc=src/cprop/_kernels
cc=${CC:-cc}
flags=(-O3 -ffp-contract=off -I"$inc")
hashes=()
run() {  # label, command...
  local label=$1
  shift
  local line
  line=$("$@")
  echo "$label: $line"
  hashes+=("${line##* }")
}
"$cc" "${flags[@]}" "$src" -o "$out/vectors" -lm
"$cc" "${flags[@]}" -DCPROP_MSVC_PATH=1 "$src" -o "$out/msvc_path" -lm
run "vector extensions" "$out/vectors"
run "vector extensions, CPROP_NO_AVX2=1" env CPROP_NO_AVX2=1 "$out/vectors"
run "MSVC path (intrinsics)" "$out/msvc_path"
run "MSVC path (intrinsics), CPROP_NO_AVX2=1" env CPROP_NO_AVX2=1 "$out/msvc_path"
if command -v aarch64-linux-gnu-gcc > /dev/null && command -v qemu-aarch64 > /dev/null; then
  aarch64-linux-gnu-gcc "${flags[@]}" "$src" -o "$out/a64" -lm
  aarch64-linux-gnu-gcc "${flags[@]}" -DCPROP_MSVC_PATH=1 "$src" -o "$out/a64_msvc" -lm
  run "aarch64 vector extensions (NEON), qemu" qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/a64"
  run "aarch64 MSVC path (scalar loops), qemu" qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/a64_msvc"
else
  echo "aarch64: no aarch64-linux-gnu-gcc or qemu-aarch64 here; skipped"
fi
for h in "${hashes[@]}"; do
  if [ "$h" != "${hashes[0]}" ]; then
    echo "row kernels: the builds give different bits" >&2
    exit 1
  fi
done
echo "row kernels: ${#hashes[@]} builds, the same bits"
