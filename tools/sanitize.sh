#!/usr/bin/env bash
# Memory-error check of the compiled kernels (issue 8): build them with AddressSanitizer into a
# scratch copy of the tree and run the tests that drive them hardest (oracle parity, training
# parity, BLAS path, validation, save/load, fuzzing) against that build; optionally (--valgrind)
# also run a subset under valgrind memcheck with the normal build.
#
#   bash tools/sanitize.sh              # ASan build + the kernel tests (~2-3 min on 2 cores)
#   bash tools/sanitize.sh --valgrind   # also valgrind memcheck on a small subset (slow)
#   bash tools/sanitize.sh --valgrind-only
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
asan=1
case "${1:-}" in
  --valgrind) valgrind=1 ;;
  --valgrind-only) valgrind=1; asan=0 ;;
  "") ;;
  *) echo "usage: bash tools/sanitize.sh [--valgrind | --valgrind-only]" >&2; exit 2 ;;
esac
# valgrind is ~40x slower: the worked examples and the BLAS-path tests
VALGRIND_TESTS=${VALGRIND_TESTS:-tests/test_seed_example.py tests/test_parity_blas.py}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A scratch copy, so the in-place build of this checkout is left alone.
mkdir -p "$work/tree"
cp -R setup.py pyproject.toml README.md LICENSE MANIFEST.in src tests "$work/tree/"
find "$work/tree/src" \( -name '*.so' -o -name '*.c' -o -name '_build_info.py' \) -delete
find "$work/tree" -name __pycache__ -prune -exec rm -rf {} +

status=0
asan_summary="not run (--valgrind-only)"
if [ $asan -eq 1 ]; then
  libasan=$(gcc -print-file-name=libasan.so)
  [ -e "$libasan" ] || { echo "sanitize: gcc has no libasan ($libasan)" >&2; exit 1; }

  echo "::: building the kernels with -fsanitize=address"
  (cd "$work/tree" && CC=gcc CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" \
     LDFLAGS="-fsanitize=address" "$PY" setup.py -q build_ext --inplace) > "$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; echo "sanitize: build failed" >&2; exit 1; }
  so=$(ls "$work"/tree/src/cprop/_kernels/_mlp*.so)
  nm -D "$so" | grep __asan_ > /dev/null || { echo "sanitize: $so is not instrumented" >&2; exit 1; }
  echo "instrumented: $so"

  TESTS=(${SANITIZE_TESTS:-tests/test_parity_forward_and_sgd.py tests/test_parity_training.py tests/test_parity_blas.py
         tests/test_seed_example.py tests/test_validation.py tests/test_save_load.py
         tests/test_fuzz.py tests/test_fuzz_load.py tests/test_reliability.py
         tests/test_interrupts.py})

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
  [ $rc -eq 0 ] || status=1
  [ "$asan_reports" -eq 0 ] || status=1
  asan_summary="$(basename "$so") instrumented (-fsanitize=address, release directives); pytest: $(grep -E '[0-9]+ (passed|failed)' "$work/pytest.log" | tail -n 1) (${secs} s, exit $rc); ASan error reports: $asan_reports"
fi

vg_summary="not run (pass --valgrind)"
if [ $valgrind -eq 1 ]; then
  command -v valgrind > /dev/null || { echo "sanitize: valgrind not installed" >&2; exit 1; }
  echo "::: valgrind memcheck (normal build of this checkout): ${VALGRIND_TESTS}"
  # The interpreter itself, not a shim script (pyenv's "python" is a bash script).
  pyexe=$("$PY" -c 'import sys; print(sys.executable)')
  vstart=$(date +%s)
  PYTHONMALLOC=malloc PYTHONPATH="$root/src" valgrind --tool=memcheck --leak-check=no \
    --log-file="$work/vg.log" "$pyexe" -m pytest -q -p no:cacheprovider ${VALGRIND_TESTS} \
    > "$work/vg-pytest.log" 2>&1
  vrc=$?
  vsecs=$(( $(date +%s) - vstart ))
  tail -n 1 "$work/vg-pytest.log"
  # A CPython not built for valgrind reports "uninitialised value" noise from its own eval
  # loop and GC; what counts is every error whose stack passes through cprop's compiled code.
  vg_summary=$("$PY" - "$work/vg.log" <<'PYEOF'
import re, sys
log = open(sys.argv[1], encoding="utf-8", errors="replace").read()
blocks = re.split(r"\n==\d+== \n", log)
errors = [b for b in blocks if re.search(r"Invalid (read|write|free)|uninitialised|Mismatched|"
                                         r"overlap|Source and destination", b)]
ours = [b for b in errors if re.search(r"cprop|_mlp\.cpython", b)]
total = re.findall(r"ERROR SUMMARY: (\d+) errors from (\d+) contexts", log)
print(f"{len(ours)} error contexts in cprop's code (of {total[-1][1] if total else '?'} "
      f"contexts in all, the rest inside the interpreter)")
for b in ours[:5]:
    print(b[:2000], file=sys.stderr)
PYEOF
)
  vg_summary="$vg_summary; pytest exit $vrc, ${vsecs} s"
  case "$vg_summary" in 0\ error*) ;; *) status=1 ;; esac
  [ $vrc -eq 0 ] || status=1
fi

echo
echo "=== sanitize summary ==="
echo "AddressSanitizer:  $asan_summary"
echo "valgrind memcheck: $vg_summary"
exit $status
