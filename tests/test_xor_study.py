"""docs/xor_study.py computes what a loop of MLP.fit computes (on a small population)."""

from __future__ import annotations

from pathlib import Path

import cprop
import docs_scripts

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _study():
    return docs_scripts.load("xor_study")


def test_solved_fraction_equals_a_loop_of_mlp_fit():
    study = _study()
    frac = study.solved_fraction(3, 0.5, n_nets=40, epochs=300, n_threads=2, seed=4)
    seeds = cprop.population.derive_seeds(4, 40)
    solved = 0
    for s in seeds:
        net = cprop.MLP([2, 3, 1], seed=int(s))
        net.fit(study.X, study.T, epochs=300, lr=0.5, batch_size=1, shuffle=False)
        solved += bool(((net.forward(study.X) > 0.5) == (study.T > 0.5)).all())
    assert frac == solved / 40
    assert 0 < frac < 1  # a real mix at this budget: the test can tell a wrong answer
    table = study.table({(h, lr): 0.5 for h in study.WIDTHS for lr in study.RATES})
    assert table.splitlines()[2] == "| 0.1 | 50.0 % | 50.0 % | 50.0 % |"


def test_docs_table_is_the_scripts():
    """One point of docs/populations.md's table recomputed in full (10,000 nets, ~2 s)."""
    study = _study()
    text = (DOCS / "populations.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| 0.1 |"))
    frac = study.solved_fraction(2, 0.1, n_nets=10_000, n_threads=2)
    assert row.split("|")[2].strip() == f"{100 * frac:.1f} %"
    assert (DOCS / "xor_study.png").stat().st_size < 100 * 1024
