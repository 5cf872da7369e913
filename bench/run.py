"""cprop's benchmark suite: cprop against its peers, in one run, on one machine, as ratios.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/run.py [--quick]
                                                 [--only W1,W2,W3,W4,W5] [--threads 1,2]

W1  seed net: 2-2-2 sigmoid, 100,000 single-sample SGD steps (lr 0.5): cprop ``fit`` and
    ``train_step``, the oracle, NumPy, PyTorch (manual tensors; autograd + optim.SGD) and a
    hand-written C loop compiled here with ``cc -O3 -march=native``. ns/step.
W2  digits: 64-32-10, sigmoid / softmax + cross-entropy, SGD lr 0.1, fixed order, 5 epochs, batch
    1 and 32: cprop, the C loop, NumPy, PyTorch, scikit-learn, all from the same weights. samples/s.
W3  wide: synthetic 8192 x 784, 784-256-10, batch 64, 2 epochs, float64 and float32, each thread
    count: cprop, NumPy, PyTorch, scikit-learn; GFLOP/s and the fraction of the GEMM ceiling, the
    fastest of the five products alone through NumPy and through each BLAS cprop can load.
W4  populations: 1,000 XOR nets 2-2-1 (W4) and 1,000 iris nets 4-8-3 (W4b) trained at once, and
    W4 at 10,000 nets on 1 and 2 threads: cprop's Population against a Python loop of MLP.fit,
    NumPy, PyTorch, JAX and C loops (bench/populations.py, run as its own process; its tables
    are printed as they are). Million net-steps/s.
W5  "scikit-learn's defaults": 50,000 x 50 make_classification, 50-100-3 relu / softmax, Adam,
    batch 200, 10 epochs: scikit-learn, cprop.sklearn, cprop MLP.fit, PyTorch and the same steps'
    GEMMs alone (bench/w5.py, its own process, 1 thread). Seconds and the share of the GEMM time.

Each thread count runs in its own worker process started with OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS set to it; inside, threadpoolctl (if installed) limits every
BLAS/OpenMP pool and torch.set_num_threads sets PyTorch's. W1 and W2 run in the worker of the
smallest thread count. Output: markdown tables on stdout, bench/results/<date>.json, and a PNG
bar chart beside it if matplotlib is importable. Nothing here asserts a speed: the "target"
columns report the issue's goals; the exit status does not depend on them. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BENCH_DIR, CLoops, LoadMeter, ThreadControl, cpu_busy, environment, log, pools_by_owner,
    worker_env,
)

WORKLOADS = ("W1", "W2", "W3", "W4", "W5")
# Agreement tolerances (largest |parameter difference| from cprop): beyond them a WARNING line is
# printed. The C loop with FMA contraction, NumPy/BLAS, PyTorch and scikit-learn round
# differently from cprop, so float64 agrees to ~1e-12 over these runs, float32 to ~1e-4.
TOL = {"W1": 1e-9, "W2": 1e-8, "W3": {"float64": 1e-8, "float32": 2e-3}}


# ------------------------------------------------------------------------------------------------
# Worker: one process per thread count
# ------------------------------------------------------------------------------------------------

def worker(args) -> int:
    import numpy  # noqa: F401  (load every library's thread pool before limiting them)
    import scipy.linalg  # noqa: F401

    try:
        import sklearn.neural_network  # noqa: F401
    except ImportError:
        pass
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    import cprop  # noqa: F401
    from cprop._kernels import _mlp

    _mlp.blas_libraries()  # every BLAS cprop can load (W3's ceilings), before the limits
    n = args.worker_threads
    tc = ThreadControl(n)
    desc = tc.describe()
    result = {"threads": desc, "thread_settings": pools_by_owner(desc)}
    repeats = args.repeats or (3 if args.quick else 5)
    budget = 0.5 if args.quick else 3.0
    cloops = CLoops()
    try:
        for w in args.worker.split(","):
            t0 = time.perf_counter()
            meter = LoadMeter()
            try:
                if w == "W1":
                    import _w1

                    result["W1"] = _w1.run(args.quick, repeats, budget, cloops)
                elif w == "W2":
                    import _w2

                    result["W2"] = _w2.run(args.quick, repeats, budget, cloops)
                elif w == "W3":
                    import _w3

                    result["W3"] = _w3.run(args.quick, repeats, 2 * budget, desc)
            except ImportError as exc:  # e.g. W2 without scikit-learn (its data set)
                result[w] = {"error": f"skipped: {exc}"}
                log(f"{w} skipped: {exc}")
            result.setdefault("seconds", {})[w] = time.perf_counter() - t0
            result.setdefault("other_load", {})[w] = meter.stop()
    finally:
        cloops.cleanup()
    with open(args.worker_out, "w") as f:
        json.dump(result, f, default=_jsonable)
    return 0


def _jsonable(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def spawn(workloads: list[str], n_threads: int, args, tmp: Path) -> dict:
    out = tmp / f"worker_{n_threads}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", ",".join(workloads),
           "--worker-threads", str(n_threads), "--worker-out", str(out)]
    if args.quick:
        cmd.append("--quick")
    if args.repeats:
        cmd += ["--repeats", str(args.repeats)]
    busy = cpu_busy()
    log(f"== worker: {', '.join(workloads)} at {n_threads} thread(s)"
        + (f" (other processes keep {100 * busy:.0f}% of the CPUs busy)" if busy is not None
           else ""))
    subprocess.run(cmd, env=worker_env(n_threads), check=True)
    with open(out) as f:
        result = json.load(f)
    result["cpu_busy_before"] = busy
    result["cpu_busy_after"] = cpu_busy()
    return result


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------

def fmt(x, spec=".3g"):
    return "n/a" if x is None else format(x, spec)


def num(x: float) -> str:
    """Thousands separators for big numbers, 3 significant digits for small ones."""
    if x is None:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def mark(ok) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def print_header(env: dict, args, threads: list[int], workers: dict) -> None:
    print(f"# cprop benchmark suite — {env['date']}{' (--quick)' if args.quick else ''}\n")
    la = env.get("load_average_1_5_15")
    print(f"- CPU: {env['cpu']}, {env['logical_cpus']} logical CPUs; load average (1/5/15 min) "
          f"at start {la}, at end {env.get('load_average_end')}")
    print(f"- Python {env['python']}; NumPy {env['numpy']} ({env['numpy_blas']}); SciPy "
          f"{env['scipy']}; PyTorch {env['torch']}; scikit-learn {env['sklearn']}; cprop "
          f"{env['cprop']} ({env['cprop_path']})")
    if env.get("cprop_build"):
        print(f"- cprop build: {env['cprop_build']}")
    print(f"- C loop compiler: {env['cc'] or 'none found (C loop skipped)'}, flags -O3 "
          f"-march=native")
    tpc = env["threadpoolctl"] or "not installed (threads set only by env vars)"
    print(f"- threadpoolctl: {tpc}"
          f"; OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE'] or '(unset)'}, "
          f"OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE'] or '(unset)'}")
    print(f"- Timing: best of up to {args.repeats or (3 if args.quick else 5)} runs after an "
          f"untimed warm-up (a run of >= 2 s counts as the first), within a time budget per "
          f"method; wall time per worker: "
          + ", ".join(f"{n} thread(s) {sum(w.get('seconds', {}).values()):.0f} s"
                      for n, w in workers.items()))
    print("\nThread settings of each peer, per worker process (each started with "
          "OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = MKL_NUM_THREADS = n):\n")
    print("| n | workloads | other processes' CPU use | NumPy | scikit-learn | PyTorch | cprop "
          "| C loop |")
    print("|---:|---|---|---|---|---|---|---|")
    busy_warning = False
    for n, w in workers.items():
        s = w["thread_settings"]
        wl = ", ".join(k for k in WORKLOADS if k in w)
        loads = [w.get("cpu_busy_before"),
                 *(w.get("other_load", {}).get(k) for k in WORKLOADS if k in w),
                 w.get("cpu_busy_after")]
        load = " / ".join("n/a" if x is None else f"{100 * x:.0f}%" for x in loads)
        busy_warning |= any(x is not None and x > 0.10 for x in loads)
        print(f"| {n} | {wl} | {load} | {s.get('numpy')} | {s.get('sklearn')} | "
              f"{s.get('torch', 'n/a')} | {s.get('cprop')} | {s.get('c')} |")
    print("\n(Other processes' CPU use, as a share of all CPUs: in the 0.5 s before the worker, "
          "during each of its workloads (/proc/stat minus the worker's own CPU time), and in the "
          "0.5 s after it. 0% = the machine was otherwise idle.)\n")
    if busy_warning:
        print("**WARNING: other processes used more than 10% of the CPUs around or during this "
              "run.** Timings, above all at more than one thread, measure contention as well as "
              "code; re-run on an idle machine.\n")


def print_w1(w1: dict, n_threads: int) -> list[str]:
    warnings = []
    print(f"## W1 — seed net, single-sample SGD ({n_threads} thread)\n")
    print("2-2-2, sigmoid hidden and output, squared error, lr 0.5, biases fixed; every method "
          "repeats one SGD step on the seed sample from the seed weights. ns/step = best run's "
          "time / steps. × C loop = time ratio (> 1: slower than C). max |ΔW| = largest weight "
          "difference from cprop `fit` after the same number of steps (the weights move by "
          f"{w1['weights_moved_by']:.3g} over {w1['steps']['c']:,} steps).\n")
    print("| method | steps/run | runs | ns/step (best) | ns/step (median) | × C loop | "
          "max \\|ΔW\\| vs fit | target |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for key, label in w1["labels"].items():
        r = w1["methods"].get(key, {})
        if "error" in r or "ns_per_step" not in r:
            print(f"| {label} | | | n/a | | | | {r.get('error', '')} |")
            continue
        target = f"{r['target']}{mark(r.get('meets_target'))}" if "target" in r else ""
        print(f"| {label} | {r['steps']:,} | {r['runs']} | {num(r['ns_per_step'])} | "
              f"{num(r['median'])} | {fmt(r.get('ratio_vs_c'), '.2f')}× | "
              f"{fmt(r.get('max_abs_diff_vs_fit'), '.2g')} | {target} |")
        if r.get("max_abs_diff_vs_fit", 0) > TOL["W1"]:
            warnings.append(f"W1: {label} differs from cprop fit by "
                            f"{r['max_abs_diff_vs_fit']:.3g} (> {TOL['W1']:g})")
    c = w1["methods"].get("c", {})
    if "max_abs_diff_vs_fit_fp_contract_off" in c:
        print(f"\nThe same C source built with `-ffp-contract=off` (no FMA contraction; untimed) "
              f"ends {c['max_abs_diff_vs_fit_fp_contract_off']:.3g} from cprop `fit` "
              f"(0 = bit-identical). C loop: `{c.get('compile')}`.")
    print()
    return warnings


def print_w2(w2: dict, n_threads: int) -> list[str]:
    warnings = []
    print(f"## W2 — digits, 64-32-10 ({n_threads} thread)\n")
    print(f"scikit-learn's digits ({w2['n_samples']} × 64, X/16), sigmoid hidden, softmax + "
          f"cross-entropy, plain SGD lr {w2['lr']}, fixed order, {w2['epochs']} epoch(s), float64, "
          "all peers from the same initial weights. samples/s = samples × epochs / best run's "
          "time. speed vs cprop = peer's samples/s ÷ cprop's (< 1: slower than cprop). final loss "
          "= mean cross-entropy of the final weights on the whole data (one evaluator for all); "
          "max |Δθ| = largest parameter difference from cprop's final parameters.\n")
    print("| batch | peer | runs | samples/s (best) | speed vs cprop | final loss | "
          "max \\|Δθ\\| vs cprop | target |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for batch, b in w2["batches"].items():
        for key, label in w2["labels"].items():
            r = b["peers"].get(key, {})
            if "samples_per_s" not in r:
                print(f"| {batch} | {label} | | n/a | | | | {r.get('error', '')} |")
                continue
            target = ""
            if "target" in r:
                target = f"{r['target']}: {r['target_ratio']:.2f}×{mark(r['meets_target'])}"
            print(f"| {batch} | {label} | {r['runs']} | {num(r['samples_per_s'])} | "
                  f"{r['speed_vs_cprop']:.3g}× | {r['final_loss']:.10f} | "
                  f"{r['max_abs_diff_vs_cprop']:.2g} | {target} |")
            if r["max_abs_diff_vs_cprop"] > TOL["W2"]:
                warnings.append(f"W2 batch {batch}: {label} differs from cprop by "
                                f"{r['max_abs_diff_vs_cprop']:.3g} (> {TOL['W2']:g})")
    notes = []
    for batch, b in w2["batches"].items():
        c = b["peers"].get("c", {})
        if "max_abs_diff_vs_cprop_fp_contract_off" in c:
            notes.append(f"batch {batch}: {c['max_abs_diff_vs_cprop_fp_contract_off']:.3g}")
        notes_loss = b.get("initial_loss")
    print(f"\nInitial loss {notes_loss:.6f}. The C loop built with `-ffp-contract=off` (untimed) "
          f"ends this far from cprop: {'; '.join(notes) or 'n/a'} (0 = bit-identical; where "
          "cprop multiplies a block through BLAS gemm, it adds in BLAS's order).\n")
    return warnings


def print_w3(w3s: dict) -> list[str]:
    warnings = []
    any_w3 = next(iter(w3s.values()))
    print("## W3 — wide, 784-256-10\n")
    print(f"Synthetic {any_w3['n']:,} × 784 (seeded N(0,1); labels from a random linear map), "
          f"sigmoid hidden, softmax + cross-entropy, plain SGD lr {any_w3['lr']}, batch "
          f"{any_w3['batch']}, {any_w3['epochs']} epoch(s), all peers from the same weights. "
          f"FLOPs = {any_w3['flops_per_sample']:,} per sample (2 per multiply-add; the five "
          "matrix products of an SGD step: X·W1, H·W2 forward, Hᵀ·D2, D2·W2ᵀ, Xᵀ·D1 "
          "backward). "
          "The GEMMs-only rows time only those five products (same shapes, dtype, threads), "
          "through NumPy and through each BLAS cprop can load (one gemm call per product, from "
          "C); the **ceiling** is the fastest of them, and % of ceiling = its time / the row's "
          "time. cprop's row names the BLAS it called (CPROP_BLAS / the auto rule).\n")
    print("| dtype | threads | peer | runs | s/run (best) | GFLOP/s | % of ceiling | final loss | "
          "max \\|Δθ\\| vs cprop | target |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for dtype in ("float64", "float32"):
        for n, w3 in w3s.items():
            res = w3["dtypes"].get(dtype)
            if res is None:
                continue
            ceilings = res.get("ceilings") or {"numpy": dict(res["ceiling"],
                                                             label="NumPy (np.matmul)")}
            for name, c in sorted(ceilings.items(), key=lambda kv: kv[1]["best"]):
                tags = [t for t, on in (("ceiling", name == res["ceiling"].get("blas", name)),
                                        ("cprop's BLAS", c.get("cprops_blas"))) if on]
                tag = f" **({', '.join(tags)})**" if tags else ""
                print(f"| {dtype} | {n} | GEMMs only, {c['label']}{tag} | {c['runs']} | "
                      f"{c['best']:.3f} | {c['gflops']:.1f} | "
                      f"{100 * res['ceiling']['best'] / c['best']:.0f}% "
                      "| | | |")
            for key in ("cprop", "numpy", "torch", "sklearn"):
                r = res.get(key, {})
                label = {"cprop": "cprop `fit`", "numpy": "NumPy",
                         "torch": "PyTorch (autograd + optim.SGD)",
                         "sklearn": "scikit-learn MLPClassifier"}[key]
                if key == "cprop" and res.get("cprop_blas") in ceilings:
                    label += f" (BLAS: {ceilings[res['cprop_blas']]['label']})"
                if "gflops" not in r:
                    print(f"| {dtype} | {n} | {label} | | n/a | | | | | {r.get('error', '')} |")
                    continue
                target = ""
                if key == "cprop" and int(n) == 1:
                    ok = r["fraction_of_ceiling"] >= 0.9
                    target = f">= 90% of the fastest ceiling{mark(ok)}"
                    r["target"] = ">= 90% of the fastest GEMM ceiling at 1 thread"
                    r["meets_target"] = ok
                diff = r.get("max_abs_diff_vs_cprop")
                print(f"| {dtype} | {n} | {label} | {r['runs']} | {r['best']:.3f} | "
                      f"{r['gflops']:.1f} | {100 * r['fraction_of_ceiling']:.0f}% | "
                      f"{r['final_loss']:.7f} | {fmt(diff, '.2g')} | {target} |")
                if diff is not None and diff > TOL["W3"][dtype]:
                    warnings.append(f"W3 {dtype} {n} thread(s): {label} differs from cprop by "
                                    f"{diff:.3g} (> {TOL['W3'][dtype]:g})")
    counts = sorted(int(n) for n in w3s)
    if len(counts) >= 2:
        lo, hi = str(counts[0]), str(counts[-1])
        print(f"\nSpeed-up from {lo} to {hi} threads (time at {lo} / time at {hi}):\n")
        print(f"| dtype | peer | GFLOP/s at {lo} | GFLOP/s at {hi} | speed-up | target |")
        print("|---|---|---:|---:|---:|---|")
        for dtype in ("float64", "float32"):
            for key in ("ceiling", "cprop", "numpy", "torch", "sklearn"):
                a = w3s[lo]["dtypes"].get(dtype, {}).get(key, {})
                b = w3s[hi]["dtypes"].get(dtype, {}).get(key, {})
                if "gflops" not in a or "gflops" not in b:
                    continue
                sp = b["gflops"] / a["gflops"]
                label = {"ceiling": "GEMMs only (the fastest: ceiling)", "cprop": "cprop `fit`",
                         "numpy": "NumPy", "torch": "PyTorch", "sklearn": "scikit-learn"}[key]
                target = ""
                if key == "cprop" and lo == "1" and hi == "2":
                    ok = sp >= 1.6
                    target = f">= 1.6×{mark(ok)}"
                    b["speedup_vs_1_thread"], b["speedup_target_met"] = sp, ok
                print(f"| {dtype} | {label} | {a['gflops']:.1f} | {b['gflops']:.1f} | "
                      f"{sp:.2f}× | {target} |")
    print()
    return warnings


# ------------------------------------------------------------------------------------------------
# Chart
# ------------------------------------------------------------------------------------------------

def chart(report: dict, path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ("no chart: matplotlib is not installed (pip install matplotlib, or the "
                "'bench' extra)")
    panels = [k for k in WORKLOADS if report.get(k) and "error" not in report[k]]
    if not panels:
        return "no chart: no results"
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.8), squeeze=False)
    for ax, wl in zip(axes[0], panels):
        if wl == "W1":
            w1 = report["W1"]
            items = [(w1["labels"][k], r["ns_per_step"]) for k, r in w1["methods"].items()
                     if "ns_per_step" in r]
            names, vals = zip(*items)
            colors = ["tab:orange" if "cprop `" in n else "tab:gray" for n in names]
            ax.barh(range(len(vals)), vals, color=colors)
            ax.set_yticks(range(len(vals)), [n.replace(" (", "\n(") for n in names], fontsize=7)
            ax.set_xscale("log")
            ax.set_xlabel("ns per SGD step (log scale; lower is better)")
            ax.set_title("W1 seed net 2-2-2, 1 thread")
            ax.invert_yaxis()
        elif wl == "W2":
            w2 = report["W2"]
            keys = [k for k in w2["labels"]]
            batches = list(w2["batches"])
            width = 0.8 / len(batches)
            for bi, batch in enumerate(batches):
                vals = [w2["batches"][batch]["peers"].get(k, {}).get("samples_per_s", 0) or 0
                        for k in keys]
                ax.bar([i + bi * width for i in range(len(keys))], vals, width,
                       label=f"batch {batch}")
            ax.set_xticks([i + width * (len(batches) - 1) / 2 for i in range(len(keys))],
                          [w2["labels"][k].split(" (")[0] for k in keys], fontsize=7,
                          rotation=20)
            ax.set_yscale("log")
            ax.set_ylabel("samples/s (log scale; higher is better)")
            ax.set_title("W2 digits 64-32-10, 1 thread")
            ax.legend(fontsize=7)
        else:
            w3s = report["W3"]
            groups = [(d, n) for d in ("float64", "float32") for n in w3s]
            keys = ["ceiling", "cprop", "numpy", "torch", "sklearn"]
            width = 0.8 / len(keys)
            for ki, key in enumerate(keys):
                vals = [w3s[n]["dtypes"].get(d, {}).get(key, {}).get("gflops", 0) or 0
                        for d, n in groups]
                ax.bar([g + ki * width for g in range(len(groups))], vals, width,
                       label="fastest GEMMs only (ceiling)" if key == "ceiling" else key)
            ax.set_xticks([g + width * (len(keys) - 1) / 2 for g in range(len(groups))],
                          [f"{d}\n{n} thread(s)" for d, n in groups], fontsize=8)
            ax.set_ylabel("GFLOP/s (higher is better)")
            ax.set_title("W3 wide 784-256-10, batch 64")
            ax.legend(fontsize=7)
    env = report["environment"]
    fig.suptitle(f"cprop {env['cprop']} vs peers — {env['date']} — {env['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart written to {path}"


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

def run_script(args, script: str, title: str, quick_args: list) -> dict:
    """A workload's own script (bench/populations.py, bench/w5.py) in its own process at 1
    thread, its tables straight to stdout; returns its JSON."""
    with tempfile.TemporaryDirectory(prefix="cprop-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(BENCH_DIR / script), "--json", str(out)]
        if args.quick:
            cmd += ["--quick", *quick_args]
        if args.repeats:
            cmd += ["--repeats", str(args.repeats)]
        print(f"## {title} (bench/{script})\n", flush=True)
        done = subprocess.run(cmd, env=worker_env(1))
        print()
        if done.returncode != 0 or not out.exists():
            return {"error": f"bench/{script} exited with status {done.returncode}"}
        return json.loads(out.read_text())


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer steps/epochs and a smaller W3 (the whole run < ~60 s)")
    ap.add_argument("--only", default="W1,W2,W3,W4,W5",
                    help="comma-separated subset of W1,W2,W3,W4,W5")
    ap.add_argument("--threads", default="1,2",
                    help="thread counts for W3 (W1 and W2 run at the smallest)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed runs per method, at most (default 5; 3 with --quick)")
    ap.add_argument("--json", metavar="PATH",
                    help="where to write the JSON (default bench/results/<date>.json)")
    ap.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    # Internal: run as a worker process.
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    only = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    bad = [w for w in only if w not in WORKLOADS]
    if bad or not only:
        ap.error(f"--only: expected a subset of W1,W2,W3,W4,W5, got {args.only!r}")
    args.only = [w for w in WORKLOADS if w in only]
    try:
        threads = sorted({int(t) for t in args.threads.split(",") if t.strip()})
    except ValueError:
        threads = []
    if not threads or threads[0] < 1:
        ap.error(f"--threads: expected positive integers like 1,2, got {args.threads!r}")
    args.thread_counts = threads
    if args.repeats is not None and args.repeats < 1:
        ap.error("--repeats: expected an int >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)

    t_start = time.perf_counter()
    env = environment()
    threads = args.thread_counts
    jobs = {}  # thread count -> workloads
    small = [w for w in args.only if w in ("W1", "W2")]
    if small:
        jobs[threads[0]] = list(small)
    if "W3" in args.only:
        for n in threads:
            jobs.setdefault(n, []).append("W3")
    workers = {}
    with tempfile.TemporaryDirectory(prefix="cprop-bench-") as tmp:
        for n, wls in sorted(jobs.items()):
            workers[str(n)] = spawn(wls, n, args, Path(tmp))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    env["load_average_end"] = [round(x, 2) for x in load] if load else None

    report = {"environment": env, "quick": args.quick, "workloads": args.only,
              "thread_counts": threads,
              "threads": {n: w["threads"] for n, w in workers.items()},
              "thread_settings": {n: w["thread_settings"] for n, w in workers.items()},
              "worker_seconds": {n: w.get("seconds", {}) for n, w in workers.items()}}
    print_header(env, args, threads, workers)
    warnings = []
    lo = str(threads[0])
    for wl, printer in (("W1", print_w1), ("W2", print_w2)):
        if wl in args.only:
            report[wl] = workers[lo][wl]
            if "error" in report[wl]:
                print(f"## {wl} — {report[wl]['error']}\n")
            else:
                warnings += printer(report[wl], threads[0])
    if "W3" in args.only:
        report["W3"] = {n: w["W3"] for n, w in workers.items() if "W3" in w}
        errors = {n: w3["error"] for n, w3 in report["W3"].items() if "error" in w3}
        if errors:
            print(f"## W3 — {next(iter(errors.values()))}\n")
            report["W3"] = {n: w3 for n, w3 in report["W3"].items() if "error" not in w3}
        if report["W3"]:
            warnings += print_w3(report["W3"])
    if "W4" in args.only:
        report["W4"] = run_script(args, "populations.py", "W4 — populations", ["--nets", "50"])
    if "W5" in args.only:
        report["W5"] = run_script(args, "w5.py", "W5 — scikit-learn's defaults, 50-100-3", [])
    for line in warnings:
        print(f"WARNING: {line}")
    if warnings:
        print()

    stamp = _dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    if args.json:
        json_path = Path(args.json)
    else:
        json_path = BENCH_DIR / "results" / f"{stamp}{'-quick' if args.quick else ''}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    report["agreement_warnings"] = warnings
    report["total_seconds"] = time.perf_counter() - t_start
    with open(json_path, "w") as f:
        json.dump(report, f, indent=2, default=_jsonable)
        f.write("\n")
    print(f"JSON written to {json_path}")
    if not args.no_chart:
        print(chart(report, json_path.with_suffix(".png")))
    print(f"Total wall time {report['total_seconds']:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
