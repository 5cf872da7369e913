"""How often does backpropagation solve XOR? ``python docs/xor_study.py`` (writes docs/xor_study.png
and prints the table of docs/populations.md).

For each hidden width H in (2, 3, 4) and each learning rate, a population of 2-H-1 sigmoid nets
(squared error, cprop's default Glorot-uniform starts, one seed per net from SplitMix64) is
trained by online SGD over XOR's four rows in a fixed order for 2,000 epochs; a net solves XOR
when all four outputs are on the right side of 0.5. ``--nets`` sets the population size (10,000
per point by default), ``--threads`` the threads (the results do not depend on it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import cprop

DOCS = Path(__file__).resolve().parent
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
T = np.array([[0], [1], [1], [0]], dtype=float)
WIDTHS = (2, 3, 4)
RATES = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def solved_fraction(width: int, lr: float, n_nets: int, epochs: int = 2000,
                    n_threads: int = 2, seed: int = 0) -> float:
    """The share of ``n_nets`` 2-width-1 nets that solve XOR after ``epochs`` epochs."""
    pop = cprop.Population([2, width, 1], n_nets, seed=seed)
    pop.fit(X, T, epochs=epochs, lr=lr, batch_size=1, shuffle=False, n_threads=n_threads)
    right = (pop.forward(X) > 0.5) == (T > 0.5)  # (n_nets, 4, 1)
    return float(right.all(axis=(1, 2)).mean())


def study(n_nets: int, epochs: int = 2000, n_threads: int = 2) -> dict:
    return {(h, lr): solved_fraction(h, lr, n_nets, epochs, n_threads)
            for h in WIDTHS for lr in RATES}


def table(results: dict) -> str:
    lines = ["| lr | " + " | ".join(f"2-{h}-1" for h in WIDTHS) + " |",
             "|---:|" + "---:|" * len(WIDTHS)]
    for lr in RATES:
        lines.append(f"| {lr:g} | " + " | ".join(f"{100 * results[h, lr]:.1f} %"
                                                for h in WIDTHS) + " |")
    return "\n".join(lines)


def plot(results: dict, n_nets: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for h in WIDTHS:
        ax.plot(RATES, [100 * results[h, lr] for lr in RATES], marker="o", label=f"2-{h}-1")
    ax.set_xscale("log")
    ax.set_xticks(RATES)
    ax.set_xticklabels([f"{lr:g}" for lr in RATES])
    ax.set_ylim(0, 100)
    ax.set_xlabel("learning rate (online SGD, fixed order, 2,000 epochs)")
    ax.set_ylabel("nets that solve XOR (%)")
    ax.set_title(f"{n_nets:,} sigmoid nets per point (cprop.Population)")
    ax.grid(alpha=0.3)
    ax.legend(title="network")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    results = study(args.nets, n_threads=args.threads)
    seconds = time.perf_counter() - t0
    print(table(results))
    steps = args.nets * 2000 * 4 * len(WIDTHS) * len(RATES)
    print(f"\n{steps:,} net-steps in {seconds:.1f} s ({steps / seconds / 1e6:.0f} M/s, "
          f"{args.threads} threads)")
    if not args.no_plot:
        plot(results, args.nets, DOCS / "xor_study.png")
        print(f"wrote {DOCS / 'xor_study.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
