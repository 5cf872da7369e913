"""The ``cprop`` command line (also ``python -m cprop``).

    cprop demo [--network seed|canonical] [--steps N] [--json]
    cprop explain --layers 3,4,2 [--seed 0] [--hidden sigmoid] [--output sigmoid]
                  [--loss squared_error] [--negative-slope 0.01]
                  [--x 0.1,0.2,0.3] [--t 0,1] [--lr 0.5] [--json]
    cprop info [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

__all__ = ["main"]


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _nonnegative_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {n}")
    return n


def _parser() -> argparse.ArgumentParser:
    from cprop import __version__
    from cprop.activations import HIDDEN, OUTPUT
    from cprop.mlp import LOSSES

    p = argparse.ArgumentParser(prog="cprop", description="Backpropagation at C speed.")
    p.add_argument("--version", action="version", version=f"cprop {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="the worked example, step by step")
    d.add_argument("--network", choices=["seed", "canonical"], default="seed",
                   help="seed: the project's seed text (default); canonical: Mazur's variant")
    d.add_argument("--steps", type=_nonnegative_int, default=0,
                   help="also train N SGD steps on the sample and show the loss")
    d.add_argument("--json", action="store_true", help="print one JSON object")

    e = sub.add_parser("explain", help="the derivation of one SGD step on a random network")
    e.add_argument("--layers", type=_ints, required=True, help="layer widths, e.g. 3,4,2")
    e.add_argument("--seed", type=int, default=0, help="seeds the weights, x and t (default 0)")
    e.add_argument("--hidden", choices=HIDDEN, default="sigmoid")
    e.add_argument("--output", choices=OUTPUT, default="sigmoid")
    e.add_argument("--loss", choices=LOSSES, default="squared_error")
    e.add_argument("--negative-slope", type=float, default=0.01,
                   help="slope of leaky_relu for negative inputs (default 0.01)")
    e.add_argument("--x", type=_floats, help="the input (default: uniform in [-1, 1))")
    e.add_argument("--t", type=_floats, help="the target (default: uniform in [0, 1))")
    e.add_argument("--lr", type=float, default=0.5, help="learning rate (default 0.5)")
    e.add_argument("--json", action="store_true", help="print the trace as one JSON object")

    i = sub.add_parser("info", help="how cprop was built and what it runs on (show_config)")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _explain(args) -> str:
    from cprop.mlp import MLP

    net = MLP(args.layers, hidden=args.hidden, output=args.output, loss=args.loss,
              seed=args.seed, negative_slope=args.negative_slope)
    # x and t come from the same seed (NumPy's generator), so a command line repeats exactly.
    rng = np.random.default_rng(args.seed)
    x = args.x if args.x is not None else rng.uniform(-1, 1, net.layer_sizes[0]).round(4)
    t = args.t if args.t is not None else rng.uniform(0, 1, net.layer_sizes[-1]).round(4)
    trace = net.explain(x, t, args.lr)
    if args.json:
        return json.dumps(trace.to_dict(), indent=2)
    return f"{net!r}\n\n{trace.format()}"


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from cprop.demo import demo_data, format_demo

            if args.json:
                data, _ = demo_data(args.network, args.steps)
                text = json.dumps(data, indent=2, ensure_ascii=False)
            else:
                text = format_demo(args.network, args.steps)
        elif args.command == "info":
            from cprop._config import config, format_config

            cfg = config()
            text = json.dumps(cfg, indent=2) if args.json else format_config(cfg)
        else:
            text = _explain(args)
    except (ValueError, TypeError, FloatingPointError) as exc:  # FPE: e.g. --x 1e308 overflows
        print(f"cprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    try:
        print(text)
    except BrokenPipeError:  # `cprop demo | head` is fine
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
