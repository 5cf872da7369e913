#!/usr/bin/env bash
# Memory-error check of the compiled kernels (issue 8): build them with AddressSanitizer into a
# scratch copy of the tree and run the tests that drive them hardest (oracle parity, training
# parity, BLAS path, validation, save/load, fuzzing) against that build; optionally (--valgrind)
# also run a subset under valgrind memcheck with the normal build.
#
#   bash tools/sanitize.sh              # ASan build + the kernel tests (~2-3 min on 2 cores)
#   bash tools/sanitize.sh --valgrind   # also valgrind memcheck on a small subset (slow)
#
# Why these settings:
# - The kernels are built with the release directives (boundscheck/wraparound off), because
#   that is the code users run; ASan instruments every load/store of the C code, so an
#   out-of-bounds access through a raw pointer aborts the run with a report.
# - python itself is not instrumented, so libasan must be loaded first (LD_PRELOAD).
# - detect_leaks=0: CPython never frees everything at exit, and LeakSanitizer would report those
#   interpreter "leaks"; leaks of cprop's own are tested by tests/test_memory.py instead.
# - PYTHONMALLOC=malloc: Python's small-object allocator otherwise hides heap errors in its own
#   arenas from ASan and valgrind.
# The summary at the end: tests passed/failed and the number of ASan / memcheck error reports.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PY=${PYTHON:-python}
valgrind=0
[ "${1:-}" = "--valgrind" ] && valgrind=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A scratch copy, so the in-place build of this checkout is left alone.
mkdir -p "$work/tree"
cp -R setup.py pyproject.toml README.md LICENSE MANIFEST.in src tests "$work/tree/"
find "$work/tree/src" \( -name '*.so' -o -name '*.c' -o -name '_build_info.py' \) -delete
find "$work/tree" -name __pycache__ -prune -exec rm -rf {} +

libasan=$(gcc -print-file-name=libasan.so)
[ -e "$libasan" ] || { echo "sanitize: gcc has no libasan ($libasan)" >&2; exit 1; }

echo "::: building the kernels with -fsanitize=address"
(cd "$work/tree" && CC=gcc CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" \
   LDFLAGS="-fsanitize=address" "$PY" setup.py -q build_ext --inplace) > "$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; echo "sanitize: build failed" >&2; exit 1; }
so=$(ls "$work"/tree/src/cprop/_kernels/_mlp*.so)
nm -D "$so" | grep __asan_ > /dev/null || { echo "sanitize: $so is not instrumented" >&2; exit 1; }
echo "instrumented: $so"

TESTS=(${SANITIZE_TESTS:-tests/test_oracle_parity.py tests/test_parity_training.py tests/test_blas_path.py
       tests/test_seed_example.py tests/test_validation.py tests/test_save_load.py
       tests/test_fuzz.py tests/test_fuzz_load.py tests/test_reliability.py})

echo "::: pytest under AddressSanitizer: ${TESTS[*]}"
start=$(date +%s)
(cd "$work/tree" && \
  LD_PRELOAD="$libasan" ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$work/asan" \
  PYTHONMALLOC=malloc PYTHONPATH="$work/tree/src" \
  "$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}") > "$work/pytest.log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
tail -n 5 "$work/pytest.log"
asan_reports=$(cat "$work"/asan.* 2>/dev/null | grep -c 'ERROR: AddressSanitizer' || true)
if [ "$asan_reports" -gt 0 ]; then
  cat "$work"/asan.* | head -n 60
fi
status=0
[ $rc -eq 0 ] || status=1
[ "$asan_reports" -eq 0 ] || status=1

vg_summary="not run (pass --valgrind)"
if [ $valgrind -eq 1 ]; then
  command -v valgrind > /dev/null || { echo "sanitize: valgrind not installed" >&2; exit 1; }
  echo "::: valgrind memcheck (normal build of this checkout), a subset of the kernel tests"
  # Each test file is slow under memcheck (~50x): the seed example, BLAS path and parity on a
  # reduced set of cases (-k) keep this to a few minutes.
  PYTHONMALLOC=malloc PYTHONPATH="$root/src" valgrind --tool=memcheck --error-exitcode=99 \
    --errors-for-leak-kinds=none --leak-check=no --track-origins=no \
    --suppressions=<(printf '{\n py\n Memcheck:Cond\n obj:*libpython*\n}\n') \
    --log-file="$work/vg.log" \
    "$PY" -m pytest -q -p no:cacheprovider -x tests/test_seed_example.py tests/test_blas_path.py \
      "tests/test_oracle_parity.py" -k "not random" > "$work/vg-pytest.log" 2>&1
  vrc=$?
  tail -n 3 "$work/vg-pytest.log"
  vg_summary=$(grep -E 'ERROR SUMMARY' "$work/vg.log" | tail -n 1 | sed 's/^==[0-9]*== //')
  [ $vrc -eq 0 ] || status=1
fi

echo
echo "=== sanitize summary ==="
echo "ASan build:        $(basename "$so") instrumented (-fsanitize=address, release directives)"
echo "pytest under ASan: $(grep -E '[0-9]+ (passed|failed)' "$work/pytest.log" | tail -n 1) (${secs} s, exit $rc)"
echo "ASan error reports: $asan_reports"
echo "valgrind memcheck: $vg_summary"
exit $status
