"""Peak memory of one cprop ``fit`` on the W3 shapes, against what it must hold.

W3: 8192 x 784 synthetic inputs, 784-256-10 (sigmoid hidden, softmax + cross-entropy), batch 64,
2 epochs of plain SGD, float64 and float32. ``tracemalloc`` sees every NumPy allocation (cprop's
workspaces are NumPy arrays; its kernels allocate nothing), so the peak it reports during ``fit``
is everything ``fit`` allocates on top of what already exists. It is compared with the floor:
the parameters + the data + the workspace ``fit`` needs (two blocks of activations/deltas and a
gradient buffer). Issue 5's target: peak <= 1.2 x (params + data + workspace).

    python bench/memory.py
"""

from __future__ import annotations

import tracemalloc

import numpy as np

import cprop


def measure(dtype: str) -> dict:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8192, 784)).astype(dtype)
    labels = rng.integers(0, 10, 8192)
    T = np.eye(10, dtype=dtype)[labels]  # one-hot, in the network's dtype: no conversion copy
    net = cprop.MLP([784, 256, 10], output="softmax", loss="cross_entropy", dtype=dtype, seed=0)
    itemsize = np.dtype(dtype).itemsize
    params = net.params.nbytes
    data = X.nbytes + T.nbytes
    rows, width = 64, net._plan.total_width
    workspace = 2 * rows * width * itemsize + params + 8192 * np.dtype(np.intp).itemsize
    tracemalloc.start()
    net.fit(X, T, epochs=2, lr=0.1, batch_size=64, shuffle=True, seed=1)
    _, peak_extra = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    floor = params + data + workspace
    total = params + data + peak_extra
    return {"dtype": dtype, "params_MiB": params / 2**20, "data_MiB": data / 2**20,
            "workspace_MiB": workspace / 2**20, "fit_allocated_MiB": peak_extra / 2**20,
            "peak_over_floor": total / floor}


def main() -> None:
    print("| dtype | params MiB | data MiB | workspace MiB (needed) | allocated by fit MiB "
          "| peak / (params + data + workspace) | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for dtype in ("float64", "float32"):
        r = measure(dtype)
        ok = "✓" if r["peak_over_floor"] <= 1.2 else "✗"
        print(f"| {r['dtype']} | {r['params_MiB']:.2f} | {r['data_MiB']:.2f} | "
              f"{r['workspace_MiB']:.2f} | {r['fit_allocated_MiB']:.2f} | "
              f"{r['peak_over_floor']:.3f} | <= 1.2 {ok} |")


if __name__ == "__main__":
    main()
