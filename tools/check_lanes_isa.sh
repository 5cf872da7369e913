#!/usr/bin/env bash
# The population kernel (src/cprop/_kernels/_population.h) built as plain C and run: the best
# vector build of this machine against the scalar build (tools/lanes_isa_check.c), then, if an
# aarch64 cross compiler and qemu-aarch64 are installed, the NEON build under emulation:
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
# Not run by CI (the cross toolchain is ~150 MB); the Python tests compare every x86 build.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
src=tools/lanes_isa_check.c
inc=src/cprop/_kernels
cc=${CC:-cc}
"$cc" -O3 -ffp-contract=off -I"$inc" "$src" -o "$out/native" -lm
echo "::: native build"
"$out/native"
if command -v aarch64-linux-gnu-gcc > /dev/null && command -v qemu-aarch64 > /dev/null; then
  aarch64-linux-gnu-gcc -O3 -ffp-contract=off -I"$inc" "$src" -o "$out/aarch64" -lm
  echo "::: aarch64 build (NEON) under qemu-aarch64"
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/aarch64"
else
  echo "::: aarch64: no aarch64-linux-gnu-gcc or qemu-aarch64 here; skipped"
fi
