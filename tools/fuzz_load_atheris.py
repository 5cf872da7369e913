"""Coverage-guided fuzzing of ``cprop.load`` with atheris (libFuzzer), for a fixed budget.

    pip install atheris
    python tools/fuzz_load_atheris.py [--runs 20000] [--seconds 120]

The seed corpus is a few valid saved networks (several optimizers, both dtypes); libFuzzer
mutates them, guided by the coverage of cprop.io and the parsers it calls (zipfile, numpy's
.npy reader, json). Every input is written to a file and loaded: a ValueError naming the file is
a refusal; a loaded network must be sound (finite parameters of the right length, a finite
forward pass). Any other exception, or a crash, stops the run with libFuzzer's report and the
offending input saved as ``crash-*`` in the working directory. libFuzzer's last line,
``Done N runs in S second(s)``, is the count of inputs run without a failure.
Not part of the test suite (tests/test_fuzz_load.py is the deterministic hypothesis version).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

try:
    import atheris
except ImportError:
    sys.exit("tools/fuzz_load_atheris.py needs atheris: pip install atheris")

with atheris.instrument_imports():
    import cprop
    import cprop.io

# libFuzzer ends the process with C exit(), so no Python cleanup runs: one fixed scratch
# directory, emptied at each start, instead of a new temporary directory per run.
WORK = os.path.join(tempfile.gettempdir(), "cprop-atheris")
PATH = os.path.join(WORK, "model.npz")


def seed_corpus(directory: str) -> None:
    rng = np.random.default_rng(0)
    for k, (opt, dtype, sizes, kw) in enumerate([
            ("adam", "float64", [3, 4, 2], {}), ("sgd", "float32", [2, 1], {}),
            ("rprop", "float64", [1, 3, 3, 1], {}), ("sgd", "float64", [2, 2, 2],
                                                     {"momentum": 0.9})]):
        net = cprop.MLP(sizes, hidden="tanh", dtype=dtype, seed=k)
        X, T = rng.normal(size=(9, sizes[0])), rng.uniform(size=(9, sizes[-1]))
        net.fit(X, T, epochs=2, batch_size=3, lr=0.01, optimizer=opt, **kw)
        net.save(os.path.join(directory, f"seed{k}.npz"))


def test_one_input(data: bytes) -> None:
    with open(PATH, "wb") as f:
        f.write(data)
    try:
        net = cprop.load(PATH)
    except ValueError as exc:
        if not str(exc).startswith(repr(PATH)):
            raise AssertionError(f"ValueError without the file name: {exc}") from None
        return
    sizes = net.layer_sizes
    n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    assert net.params.shape == (n,) and np.isfinite(net.params).all()
    y = net.forward(np.zeros(sizes[0]))
    assert np.isfinite(y).all()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20000, help="inputs to run (default 20000)")
    p.add_argument("--seconds", type=int, default=300, help="time budget (default 300)")
    args, rest = p.parse_known_args()
    shutil.rmtree(WORK, ignore_errors=True)
    corpus = os.path.join(WORK, "corpus")
    os.makedirs(corpus)
    seed_corpus(corpus)
    argv = [sys.argv[0], f"-runs={args.runs}", f"-max_total_time={args.seconds}",
            "-max_len=8192", "-rss_limit_mb=4096", *rest, corpus]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
