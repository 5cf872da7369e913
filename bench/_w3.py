"""W3, wide: synthetic 8192 x 784 data (seeded), 784-256-10, sigmoid hidden, softmax +
cross-entropy, plain SGD, batch 64, 2 epochs; float64 and float32; run once per thread count.

FLOP count (2 per multiply-add), per sample, of the matrix products one SGD step needs:
    forward   2 (n_in n_hid + n_hid n_out)       X W1, H W2
    backward  2 n_in n_hid + 4 n_hid n_out       dW1 = X^T D1; dW2 = H^T D2, dH = D2 W2^T
(the input layer's delta X-gradient is not needed), i.e. 4 n_in n_hid + 6 n_hid n_out =
818,176 FLOPs per sample for 784-256-10. The often-quoted "backward = 2x forward" convention,
6 (n_in n_hid + n_hid n_out) = 1,219,584, overstates it by 1.49x; the JSON keeps both.

The ceilings: exactly these five products (into preallocated outputs, same shapes, dtype,
batches and thread count, nothing else) over the same epochs, timed once through NumPy
(``np.matmul``, NumPy's own OpenBLAS) and once through each BLAS cprop can load here (SciPy's
OpenBLAS, scipy-openblas32, MKL: ``_mlp.gemm_steps``, one gemm call per product from C, as the
kernels make them). The ceiling is the fastest of these. Each peer's GFLOP/s is the FLOP count
above divided by its training time, and its fraction of the ceiling is its GFLOP/s over the
fastest ceiling's (= that ceiling's time / its time). The ceiling leaves out the elementwise work
(sigmoid, softmax, the update), so 100% is out of reach by a few percent.
"""

from __future__ import annotations

import numpy as np

from _common import log, measure_many, summary
from _peers import PEERS, make_problem, mean_loss

N_IN, N_HID, N_OUT = 784, 256, 10
BATCH, LR = 64, 0.1
FULL = {"n": 8192, "epochs": 2}
QUICK = {"n": 2048, "epochs": 1}
DTYPES = ("float64", "float32")
ORDER = ("cprop", "numpy", "torch", "sklearn")
LABELS = {"ceiling": "NumPy GEMMs only", "cprop": "cprop `fit`", "numpy": "NumPy",
          "torch": "PyTorch (autograd + optim.SGD)", "sklearn": "scikit-learn MLPClassifier"}

# Pause before each timed run at more than one thread (see _common.measure_many).
SETTLE_S = 0.3

FLOPS_PER_SAMPLE = 4 * N_IN * N_HID + 6 * N_HID * N_OUT
NOMINAL_FLOPS_PER_SAMPLE = 6 * (N_IN * N_HID + N_HID * N_OUT)


def data(n: int, seed: int = 20240605):
    """X ~ N(0, 1) (n, 784); labels = argmax of a random linear map of X (a learnable task)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N_IN))
    R = rng.standard_normal((N_IN, N_OUT))
    return X, np.argmax(X @ R, axis=1)


# The BLAS libraries cprop can call (_mlp.blas_libraries), as the ceilings name them.
BLAS_LABELS = {"scipy": "SciPy's OpenBLAS", "scipy-openblas32": "scipy-openblas32",
               "mkl": "MKL"}


def blas_ceilings() -> dict:
    """name -> description of every BLAS cprop can load here (loading them), e.g.
    {"scipy": "SciPy's OpenBLAS (scipy.linalg.cython_blas)", "mkl": "MKL 2026.2.1"}."""
    from cprop._kernels import _mlp

    out = {}
    for name, lib in _mlp.blas_libraries().items():
        if isinstance(lib, dict):
            version = f" {lib['version']}" if lib.get("version") else ""
            out[name] = BLAS_LABELS[name] + (version or " (scipy.linalg.cython_blas)")
    return out


def cprop_blas() -> str:
    """The name (as in blas_ceilings) of the BLAS cprop's kernels call."""
    from cprop._kernels import _mlp

    lib = _mlp.blas_library()["library"]
    return {"scipy.linalg.cython_blas": "scipy"}.get(lib, lib)


class Ceiling:
    """The five matrix products of each SGD step, timed alone: with NumPy (``blas=None``) or
    through the gemm of one BLAS cprop can load (``blas="scipy"``, ``"scipy-openblas32"``,
    ``"mkl"``; ``_mlp.gemm_steps``: a loop in C, one gemm call per product)."""

    def __init__(self, p, blas=None):
        dt, B = p.dtype, p.batch
        rng = np.random.default_rng(1)
        self.p = p
        self.blas = blas
        self.W1 = (rng.standard_normal((N_IN, N_HID)) * 0.05).astype(dt)
        self.W2 = (rng.standard_normal((N_HID, N_OUT)) * 0.05).astype(dt)
        self.H = rng.random((B, N_HID)).astype(dt)
        self.D2 = (rng.standard_normal((B, N_OUT)) * 0.01).astype(dt)
        self.D1 = (rng.standard_normal((B, N_HID)) * 0.01).astype(dt)
        self.Z1 = np.empty((B, N_HID), dt)
        self.Z2 = np.empty((B, N_OUT), dt)
        self.DH = np.empty((B, N_HID), dt)
        self.gW1 = np.empty_like(self.W1)
        self.gW2 = np.empty_like(self.W2)

    def run(self):
        if self.blas is not None:
            return self._run_blas()
        p, mm = self.p, np.matmul
        X, B = p.X, p.batch
        W1, W2, H, D2, D1 = self.W1, self.W2, self.H, self.D2, self.D1
        for _ in range(p.epochs):
            for s in range(0, p.n, B):
                Xb = X[s:s + B]
                c = Xb.shape[0]
                mm(Xb, W1, out=self.Z1[:c])                 # forward, layer 1
                mm(H[:c], W2, out=self.Z2[:c])              # forward, layer 2
                mm(H[:c].T, D2[:c], out=self.gW2)           # dW2
                mm(D2[:c], W2.T, out=self.DH[:c])           # dH
                mm(Xb.T, D1[:c], out=self.gW1)              # dW1

    def _run_blas(self):
        from cprop._kernels import _mlp

        p = self.p
        if p.n % p.batch:
            raise ValueError("the BLAS ceilings need whole batches (n a multiple of batch)")
        X = np.ascontiguousarray(p.X)
        _mlp.gemm_steps(self.blas, X, p.batch, p.epochs, [
            ("X", False, self.W1, False, self.Z1),         # forward, layer 1
            (self.H, False, self.W2, False, self.Z2),      # forward, layer 2
            (self.H, True, self.D2, False, self.gW2),      # dW2
            (self.D2, False, self.W2, True, self.DH),      # dH
            ("X", True, self.D1, False, self.gW1),         # dW1
        ])


def run(quick: bool, repeats: int, budget_s: float, threads_desc: dict) -> dict:
    cfg = QUICK if quick else FULL
    X, y = data(cfg["n"])
    flops = FLOPS_PER_SAMPLE * cfg["n"] * cfg["epochs"]
    out = {"n": cfg["n"], "epochs": cfg["epochs"], "batch": BATCH, "lr": LR,
           "sizes": [N_IN, N_HID, N_OUT], "flops_per_sample": FLOPS_PER_SAMPLE,
           "nominal_flops_per_sample": NOMINAL_FLOPS_PER_SAMPLE, "flops": flops,
           "threads": threads_desc, "dtypes": {}}
    for dtype in DTYPES:
        p = make_problem(X, y, N_OUT, N_HID, LR, BATCH, cfg["epochs"], np.dtype(dtype))
        res = {}
        trainers = {"ceiling": Ceiling(p)}
        blas = blas_ceilings()
        for name in blas:
            trainers[f"ceiling:{name}"] = Ceiling(p, name)
        for key in ORDER:
            try:
                trainers[key] = PEERS[key](p)
            except ImportError as exc:
                res[key] = {"error": f"not installed ({exc})"}
        log(f"W3 {dtype}, {threads_desc['requested']} thread(s): "
            + ", ".join(LABELS.get(k) or f"GEMMs only via {blas[k.split(':', 1)[1]]}"
                        for k in trainers) + " (interleaved)")
        methods = {k: (t.run, getattr(t, "reset", None)) for k, t in trainers.items()}
        settle = SETTLE_S if threads_desc["requested"] > 1 else 0.0
        times = measure_many(methods, repeats=repeats, budget_s=budget_s, settle_s=settle)
        # Every ceiling (NumPy's and each BLAS's); "ceiling" is the fastest of them.
        ceilings = {}
        for key in trainers:
            if key == "ceiling" or key.startswith("ceiling:"):
                name = "numpy" if key == "ceiling" else key.split(":", 1)[1]
                c = summary(times[key], 1.0)
                c["gflops"] = flops / c["best"] / 1e9
                c["label"] = "NumPy (np.matmul)" if name == "numpy" else blas[name]
                c["cprops_blas"] = name == cprop_blas()
                ceilings[name] = c
        fastest = min(ceilings, key=lambda k: ceilings[k]["best"])
        for c in ceilings.values():
            c["fraction_of_fastest"] = ceilings[fastest]["best"] / c["best"]
        res["ceilings"] = ceilings
        res["ceiling"] = dict(ceilings[fastest], blas=fastest)
        res["cprop_blas"] = cprop_blas()
        results_params = {}
        for key in ORDER:
            if key not in trainers:
                continue
            r = summary(times[key], 1.0)
            r["gflops"] = flops / r["best"] / 1e9
            r["fraction_of_ceiling"] = r["gflops"] / res["ceiling"]["gflops"]
            # Every run starts from reset(): the parameters now are the trained ones.
            results_params[key] = trainers[key].params()
            r["final_loss"] = mean_loss(results_params[key], p.X, p.labels)
            res[key] = r
        ref = results_params.get("cprop")
        for key, params in results_params.items():
            if ref is not None:
                res[key]["max_abs_diff_vs_cprop"] = max(
                    float(np.max(np.abs(a - b))) for a, b in zip(params, ref))
        res["initial_loss"] = mean_loss(p.init, p.X, p.labels)
        out["dtypes"][dtype] = res
    return out
