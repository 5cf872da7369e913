"""W2, digits: scikit-learn's bundled digits (1797 x 64, X / 16), 64-32-10, sigmoid hidden,
softmax + cross-entropy, plain SGD lr 0.1 in a fixed order, 5 epochs, batch 1 and batch 32.

All peers start from the same weights (cprop's Glorot-uniform draw, seed 0); the report shows
each one's final mean loss on the whole data and its largest parameter difference from cprop.
"""

from __future__ import annotations

import numpy as np

from _common import CLoops, log, measure_many, summary
from _peers import PEERS, make_problem, mean_loss, run_c_loop

EPOCHS, LR, HIDDEN, BATCHES = 5, 0.1, 32, (1, 32)
ORDER = ("c", "c_portable", "cprop", "numpy", "torch", "sklearn")
LABELS = {"c": "C loop (cc -O3 -march=native)", "c_portable": "C loop, portable (cc -O3)",
          "cprop": "cprop `fit`", "numpy": "NumPy",
          "torch": "PyTorch (autograd + optim.SGD)", "sklearn": "scikit-learn MLPClassifier"}


def _max_diff(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))


def run(quick: bool, repeats: int, budget_s: float, cloops: CLoops) -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    epochs = 1 if quick else EPOCHS
    out = {"n_samples": int(X.shape[0]), "epochs": epochs, "lr": LR,
           "sizes": [X.shape[1], HIDDEN, 10], "batches": {}, "labels": LABELS}
    for batch in BATCHES:
        p = make_problem(X, y, 10, HIDDEN, LR, batch, epochs, np.float64)
        samples = p.n * p.epochs
        results = {}
        for key in ("c", "c_portable"):
            log(f"W2 batch {batch}: {LABELS[key]}")
            c = run_c_loop(cloops, p, repeats, native=key == "c")
            if "error" in c:
                results[key] = {"error": c["error"]}
                continue
            results[key] = {**summary([v * samples for v in c["ns_per_sample"]], samples),
                            "compile": c["compile"], "params": c["params"],
                            "epoch_loss": c["epoch_loss"][-1]}
        if "params" in results["c"]:
            exact = run_c_loop(cloops, p, 1, exact=True)
            if "params" in exact:
                results["c"]["params_exact"] = exact["params"]
        trainers = {}
        for key in ("cprop", "numpy", "torch", "sklearn"):
            try:
                trainers[key] = PEERS[key](p)
            except ImportError as exc:
                results[key] = {"error": f"not installed ({exc})"}
        log(f"W2 batch {batch}: " + ", ".join(LABELS[k] for k in trainers) + " (interleaved)")
        times = measure_many({k: (t.run, t.reset) for k, t in trainers.items()},
                             repeats=repeats, budget_s=budget_s)
        for key, trainer in trainers.items():
            # Every run starts from reset(): the parameters now are the trained ones.
            results[key] = {**summary(times[key], samples / 1e9), "params": trainer.params()}
            if key == "cprop":
                results[key]["epoch_loss"] = trainer.history.loss[-1]
        ref = results["cprop"]["params"]
        for r in results.values():
            if "params" not in r:
                continue
            r["ns_per_sample"] = r["best"]
            r["samples_per_s"] = 1e9 / r["best"]
            r["final_loss"] = mean_loss(r["params"], p.X, p.labels)
            r["max_abs_diff_vs_cprop"] = _max_diff(r.pop("params"), ref)
            if "params_exact" in r:
                r["max_abs_diff_vs_cprop_fp_contract_off"] = _max_diff(r.pop("params_exact"),
                                                                       ref)
        cp = results["cprop"]
        for r in results.values():
            if "samples_per_s" in r:
                r["speed_vs_cprop"] = r["samples_per_s"] / cp["samples_per_s"]
        if batch == 1 and "samples_per_s" in results["c"]:
            cp["target"] = ">= 0.95x C loop"
            cp["target_ratio"] = cp["samples_per_s"] / results["c"]["samples_per_s"]
            cp["meets_target"] = cp["target_ratio"] >= 0.95
        if batch == 32 and "samples_per_s" in results["sklearn"]:
            cp["target"] = ">= 3x scikit-learn"
            cp["target_ratio"] = cp["samples_per_s"] / results["sklearn"]["samples_per_s"]
            cp["meets_target"] = cp["target_ratio"] >= 3.0
        out["batches"][str(batch)] = {"initial_loss": mean_loss(p.init, p.X, p.labels),
                                      "peers": results}
    return out
