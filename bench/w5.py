"""W5, "scikit-learn's defaults": a medium network where the GEMMs, not Python, should be the cost.

50,000 x 50 synthetic data (``sklearn.datasets.make_classification(n_samples=50000,
n_features=50, n_informative=10, n_classes=3, random_state=0)``: 3 classes need more than the
default 2 informative features), a 50-100-3 network, relu hidden, softmax + cross-entropy, Adam
lr 1e-3, batch 200, 10 epochs, the rows in a fixed order (no shuffling), float64, 1 thread for
every peer:

- the ceiling: the same steps' matrix products alone, through NumPy (per batch: X W1, H W2 forward;
  H^T D2, X^T D1 the weight gradients; D2 W2^T the hidden layer's input gradient), into
  preallocated outputs; nothing else; and the same products through the BLAS cprop calls
  (``_mlp.gemm_steps``: MKL, scipy-openblas32 or SciPy's OpenBLAS, as CPROP_BLAS / the auto rule
  chose; one gemm call per product from C);
- scikit-learn ``MLPClassifier(shuffle=False, max_iter=10, random_state=0)`` (its defaults
  otherwise: hidden (100,), relu, Adam lr 1e-3, batch 200, alpha 1e-4), and
  ``cprop.sklearn.MLPClassifier`` with the same arguments (the same loss curve: the table's last
  column compares the two);
- ``cprop.MLP.fit`` (Adam, alpha 0), 1 thread, and 2 threads through ``fit(..., n_threads=2)``
  (each batch of 200 is cut into 2 parts of 100 rows whatever the thread count, so the two runs
  give the same bits; the script checks that);
- PyTorch ``nn.Linear`` + ``torch.optim.Adam`` (float64, the same batches).

    python bench/w5.py [--quick] [--repeats N] [--json PATH]

The table: seconds (best of the repeats), the ratio to scikit-learn, and the share of the
ceiling's time (ceiling / peer: 100 % would be a fit that costs only its GEMMs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

import cprop  # noqa: E402
from _common import cpu_model  # noqa: E402

N_IN, N_HID, N_OUT = 50, 100, 3
BATCH, LR = 200, 1e-3
FULL = {"n": 50_000, "epochs": 10}
QUICK = {"n": 5_000, "epochs": 2}


def data(n: int):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=N_IN, n_informative=10,
                               n_classes=N_OUT, random_state=0)
    return np.ascontiguousarray(X), y


def ceiling_operands():
    """The weights, a delta and the preallocated outputs of the five products of a step."""
    rng = np.random.default_rng(1)
    W1 = rng.standard_normal((N_IN, N_HID)) * 0.1
    W2 = rng.standard_normal((N_HID, N_OUT)) * 0.1
    D2 = rng.standard_normal((BATCH, N_OUT)) * 0.01
    Z1, Z2 = np.empty((BATCH, N_HID)), np.empty((BATCH, N_OUT))
    G1, G2, GH = np.empty((N_IN, N_HID)), np.empty((N_HID, N_OUT)), np.empty((BATCH, N_HID))
    return W1, W2, D2, Z1, Z2, G1, G2, GH


def ceiling(X, epochs):
    """The five matrix products of every step, alone (NumPy, preallocated outputs)."""
    W1, W2, D2, Z1, Z2, G1, G2, GH = ceiling_operands()
    starts = range(0, len(X) - BATCH + 1, BATCH)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for s in starts:
            xb = X[s:s + BATCH]
            np.matmul(xb, W1, out=Z1)
            np.matmul(Z1, W2, out=Z2)
            np.matmul(Z1.T, D2, out=G2)
            np.matmul(D2, W2.T, out=GH)
            np.matmul(xb.T, GH, out=G1)
    return time.perf_counter() - t0, None


def ceiling_cprop_blas(X, epochs):
    """The same five products, through the gemm cprop's kernels call (its BLAS)."""
    from cprop._kernels import _mlp

    lib = _mlp.blas_library()["library"]
    lib = {"scipy.linalg.cython_blas": "scipy"}.get(lib, lib)
    W1, W2, D2, Z1, Z2, G1, G2, GH = ceiling_operands()
    ops = [("X", False, W1, False, Z1), (Z1, False, W2, False, Z2), (Z1, True, D2, False, G2),
           (D2, False, W2, True, GH), ("X", True, GH, False, G1)]
    X = np.ascontiguousarray(X)
    t0 = time.perf_counter()
    _mlp.gemm_steps(lib, X, BATCH, epochs, ops)  # (full batches only, as ceiling's starts)
    return time.perf_counter() - t0, None


def sklearn_fit(X, y, epochs, cls):
    from sklearn.exceptions import ConvergenceWarning

    est = cls(shuffle=False, max_iter=epochs, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - t0
    return seconds, list(est.loss_curve_)


def cprop_fit(X, y, epochs, n_threads=1):
    net = cprop.MLP([N_IN, N_HID, N_OUT], hidden="relu", output="softmax",
                    loss="cross_entropy", seed=0)
    T = np.eye(N_OUT)[y]
    t0 = time.perf_counter()
    history = net.fit(X, T, epochs=epochs, lr=LR, optimizer="adam", batch_size=BATCH,
                      shuffle=False, n_threads=n_threads)
    return time.perf_counter() - t0, list(history.loss)


def torch_fit(X, y, epochs):
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(N_IN, N_HID), torch.nn.ReLU(),
                                torch.nn.Linear(N_HID, N_OUT)).double()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    losses = []
    t0 = time.perf_counter()
    for _ in range(epochs):
        total = 0.0
        for s in range(0, len(X), BATCH):
            opt.zero_grad()
            loss = loss_fn(model(Xt[s:s + BATCH]), yt[s:s + BATCH])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(Xt[s:s + BATCH])
        losses.append(total / len(X))
    return time.perf_counter() - t0, losses


def best_of(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        seconds, out = fn()
        best = min(best, seconds)
    return best, out


def main(argv=None) -> int:
    from sklearn.neural_network import MLPClassifier

    import cprop.sklearn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5,000 rows, 2 epochs, one repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated peers to leave out (torch)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(argv)
    size = QUICK if args.quick else FULL
    repeats = 1 if args.quick else args.repeats
    X, y = data(size["n"])
    epochs = size["epochs"]
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); Python "
          f"{platform.python_version()}, NumPy {np.__version__}, cprop {cprop.__version__}; "
          f"cprop's BLAS: {cprop._kernels._mlp.blas_library()['library']}")
    print()
    print(f"W5: {size['n']:,} x {N_IN} make_classification, {N_IN}-{N_HID}-{N_OUT} relu / "
          f"softmax + cross-entropy, Adam lr {LR}, batch {BATCH}, {epochs} epochs, fixed order, "
          f"float64")
    blas = cprop._kernels._mlp.blas_library()
    peers = [("the same steps' GEMMs alone, NumPy (the ceiling), 1 thread",
              lambda: ceiling(X, epochs)),
             (f"the same steps' GEMMs alone, cprop's BLAS ({blas['library']}), 1 thread",
              lambda: ceiling_cprop_blas(X, epochs)),
             ("scikit-learn MLPClassifier(), 1 thread",
              lambda: sklearn_fit(X, y, epochs, MLPClassifier)),
             ("cprop.sklearn.MLPClassifier(), 1 thread",
              lambda: sklearn_fit(X, y, epochs, cprop.sklearn.MLPClassifier)),
             ("cprop MLP.fit, 1 thread", lambda: cprop_fit(X, y, epochs)),
             ("cprop MLP.fit, 2 threads (n_threads=2)", lambda: cprop_fit(X, y, epochs, 2))]
    if "torch" not in args.skip.split(","):
        try:
            import torch  # noqa: F401
            peers.append(("PyTorch nn.Linear + optim.Adam, 1 thread",
                          lambda: torch_fit(X, y, epochs)))
        except ImportError:
            print("  (PyTorch not installed: row skipped)")
    print("| peer | seconds | x scikit-learn | share of the GEMM-only time |")
    print("|---|---:|---:|---:|")
    rows, curves = {}, {}
    for label, fn in peers:
        seconds, curve = best_of(fn, repeats)
        rows[label], curves[label] = seconds, curve
        base = rows.get("scikit-learn MLPClassifier(), 1 thread", seconds)
        ceil = rows[peers[0][0]]
        print(f"| {label} | {seconds:.3f} | {base / seconds:.2f} | {ceil / seconds:.0%} |",
              flush=True)
    skl = curves["scikit-learn MLPClassifier(), 1 thread"]
    ours = curves["cprop.sklearn.MLPClassifier(), 1 thread"]
    gap = float(np.max(np.abs(np.array(skl) - np.array(ours)) / np.abs(np.array(skl))))
    one = rows["cprop MLP.fit, 1 thread"]
    two = rows["cprop MLP.fit, 2 threads (n_threads=2)"]
    same = curves["cprop MLP.fit, 1 thread"] == curves["cprop MLP.fit, 2 threads (n_threads=2)"]
    ceil = rows[peers[0][0]]
    print()
    print(f"cprop.sklearn's loss curve against scikit-learn's: largest relative difference "
          f"{gap:.1e} over {len(skl)} epochs")
    print(f"cprop MLP.fit's loss curve on 2 threads is {'the same bits as' if same else 'NOT'} "
          f"the 1-thread one")
    print()
    print("| target | this run | wanted | |")
    print("|---|---:|---:|---|")
    checks = [("GEMM-only time / cprop MLP.fit (1 thread)", ceil / one, 0.85),
              ("cprop MLP.fit 1 -> 2 threads (n_threads)", one / two, 1.7),
              ("cprop.sklearn loss curve vs scikit-learn (relative)", gap, None)]
    for label, value, wanted in checks:
        if wanted is None:
            print(f"| {label} | {value:.1e} | <= 1e-12 | {'met' if value <= 1e-12 else 'MISSED'} |")
        else:
            print(f"| {label} | {value:.2f} | >= {wanted} | "
                  f"{'met' if value >= wanted else 'MISSED'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"cpu": cpu_model(), "rows": rows, "loss_curve_gap": gap, "threads_same_bits": same,
             "n": size["n"], "epochs": epochs}, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
