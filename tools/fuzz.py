"""Run the hypothesis fuzz tests with a larger budget, each run in a child process (issue 8).

    python tools/fuzz.py [--scale 10] [--seeds 0,1,2] [--files tests/test_fuzz.py,...]

Each (test file, seed) runs ``python -m pytest FILE`` in its own child process with
``CPROP_FUZZ_SCALE`` (multiplies every ``max_examples``) and ``CPROP_FUZZ_SEED`` (another
seed: different examples from CI's fixed ones). A crash - the child killed by a signal such as
SIGSEGV/SIGABRT, or "Fatal Python error" in its output - is counted and reported, and cannot
take the other runs down with it. Prints the examples run per test and the totals; exits 1 on
any failure or crash. Run it from the checkout (with PYTHONPATH=src for an in-place build).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ["tests/test_fuzz.py", "tests/test_fuzz_load.py", "tests/test_fuzz_cli_files.py"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=10.0, help="x max_examples (default 10)")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    p.add_argument("--files", default=",".join(FILES))
    args = p.parse_args(argv)
    totals: Counter = Counter()
    crashes, failures, runs = [], [], 0
    started = time.perf_counter()
    for seed in args.seeds.split(","):
        for file in args.files.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                report = os.path.join(tmp, "counts.jsonl")
                env = dict(os.environ, CPROP_FUZZ_SCALE=str(args.scale),
                           CPROP_FUZZ_SEED=seed, CPROP_FUZZ_REPORT=report)
                cmd = [sys.executable, "-X", "faulthandler", "-m", "pytest", "-q",
                       "-p", "no:cacheprovider", f"--hypothesis-seed={seed}", file]
                t0 = time.perf_counter()
                out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
                dt = time.perf_counter() - t0
                runs += 1
                text = out.stdout + out.stderr
                counts: Counter = Counter()
                if os.path.exists(report):
                    for line in open(report, encoding="utf-8"):
                        counts.update(json.loads(line)["runs"])
                totals.update(counts)
                crashed = out.returncode < 0 or "Fatal Python error" in text
                summary = (text.strip().splitlines() or ["(no output)"])[-1]
                status = "CRASH" if crashed else ("ok" if out.returncode == 0 else "FAILED")
                if out.returncode < 0:
                    summary = f"killed by {signal.Signals(-out.returncode).name}"
                print(f"seed {seed} {file}: {sum(counts.values())} examples, {dt:.0f} s, "
                      f"{status}: {summary}", flush=True)
                if crashed:
                    crashes.append((seed, file))
                    print(text[-4000:])
                elif out.returncode != 0:
                    failures.append((seed, file))
                    print(text[-4000:])
    print()
    print("| entry point | examples run |")
    print("|---|---:|")
    for name, n in sorted(totals.items()):
        print(f"| {name} | {n} |")
    print(f"| **total** | **{sum(totals.values())}** |")
    print()
    print(f"{runs} child runs in {time.perf_counter() - started:.0f} s; "
          f"crashes: {len(crashes)}; failed runs: {len(failures)}")
    return 1 if crashes or failures else 0


if __name__ == "__main__":
    sys.exit(main())
