"""A population's nets split over a dask.distributed cluster: ``Population.fit(..., client=c)``.

``fit`` checks every argument on this machine first (its own validation, the dry run on net 0
included), then:

1. splits the nets into contiguous blocks (:func:`block_bounds`): ``n_blocks`` of them, by
   default one per worker thread of the cluster (``sum(client.nthreads().values())``). When the
   fit takes the lanes route, every block but the last holds a whole number of the kernel's lane
   blocks (``_mlp.population_block(dtype)`` nets: 8 to 128 by instruction set), so no worker
   runs a half-empty one in the middle; otherwise the blocks are as even as can be;
2. scatters ``(X, T, validation_data)`` once to every worker (``broadcast=True``), and each
   block to one worker: the architecture's arguments, the seeds, each member's
   ``MLP.state_dict()`` (parameters, optimizer state and steps, generator) and the block's slice
   of every per-net option (``lr``, ..., ``subsets``), all plain numbers, lists and arrays;
3. on each worker, rebuilds the block as a ``Population`` and trains it with the ordinary local
   ``Population.fit`` (the same kernels, routes, bootstrap draws from each member's own
   generator, early stopping, ``n_threads``);
4. gathers every block (each member's new state and the block's history) and only then writes
   them back into the population, in order: if a block fails or the wait is interrupted,
   nothing has changed.

The result is the local fit's, bit for bit: every net's training depends only on its own
state, options and rows, never on its neighbours (tests/test_population_dask.py).

The workers need cprop installed (the same version). This module imports dask only inside its
functions, and ``import cprop`` does not import it.
"""

from __future__ import annotations

import numbers
import uuid

import numpy as np

from cprop._kernels import _mlp

__all__ = ["block_bounds", "check", "fit"]

EXTRA = 'pip install "cprop[dask]"'


def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"client=: training a population on a dask cluster needs "
                          f"dask.distributed, the `dask` extra: {EXTRA}") from exc
    return distributed


def check(client, n_blocks) -> None:
    """Raise unless ``client`` is a ``distributed.Client`` and ``n_blocks`` None or an int >= 1
    (ImportError naming the ``dask`` extra when dask.distributed is not installed)."""
    distributed = _distributed()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client: expected a distributed.Client (dask.distributed) or None, "
                        f"got {type(client).__name__}")
    if n_blocks is not None and (isinstance(n_blocks, bool)
                                 or not isinstance(n_blocks, numbers.Integral) or n_blocks < 1):
        raise ValueError(f"n_blocks: expected an int >= 1, or None (one block per worker "
                         f"thread), got {n_blocks!r}")


def block_bounds(n: int, n_blocks: int, lane: int = 1) -> list:
    """``(lo, hi)`` of at most ``n_blocks`` contiguous, non-empty blocks covering ``n`` nets.
    With ``lane`` > 1, every block but the last holds a whole number of ``lane`` nets (so there
    are at most ``ceil(n / lane)`` blocks), spread as evenly as that allows; with ``lane`` 1,
    the block sizes differ by at most one."""
    unit = max(1, int(lane))
    units = -(-n // unit)
    k = max(1, min(int(n_blocks), units))
    bounds, lo = [], 0
    for b in range(k):
        hi = min(n, lo + (units // k + (b < units % k)) * unit)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def fit(pop, client, X, T, common: dict, per_net: dict, *, subsets, bootstrap, n_threads,
        n_blocks, lanes: bool):
    """``pop.fit``'s work on the cluster (called by ``Population.fit`` once every argument has
    been checked); returns the :class:`PopulationHistory` the local fit would."""
    if n_blocks is None:
        n_blocks = sum(client.nthreads().values())
    lane = _mlp.population_block(pop.dtype) if lanes else 1
    bounds = block_bounds(pop.n_nets, n_blocks, lane)
    shared = {k: v for k, v in common.items() if k != "validation_data"}
    rows = None if subsets is None else np.asarray(subsets)
    blocks = []
    for lo, hi in bounds:
        options = {**shared, **{k: np.array(v[lo:hi]) for k, v in per_net.items()},
                   "subsets": None if rows is None else rows[lo:hi], "bootstrap": bootstrap,
                   "n_threads": n_threads}
        block = pop._block(lo, hi)
        block["states"] = _pack(block["states"])
        blocks.append({"population": block, "options": options})
    token = uuid.uuid4().hex
    futures: list = []
    try:
        # the data once to every worker; each block to one worker, where its task then runs
        [data] = client.scatter([(X, T, common["validation_data"])], broadcast=True,
                                hash=False)
        futures.append(data)
        parts = client.scatter(blocks, hash=False)
        futures += parts
        tasks = [client.submit(_fit_block, data, part, pure=False,
                               key=f"cprop-population-fit-{lo}-{hi}-{token}")
                 for (lo, hi), part in zip(bounds, parts)]
        futures += tasks
        results = client.gather(tasks)
    except BaseException:
        client.cancel(futures)
        raise
    for (lo, _), (states, _) in zip(bounds, results):
        pop._load_states(lo, _unpack(states))
    return _merge([history for _, history in results], [lo for lo, _ in bounds])


def _fit_block(data, block: dict) -> tuple:
    """On a worker: one block trained by the local ``Population.fit``; returns each member's
    ``state_dict`` and the block's history."""
    from cprop.population import Population

    X, T, validation_data = data
    sub = Population._from_block({**block["population"],
                                  "states": _unpack(block["population"]["states"])})
    history = sub.fit(X, T, validation_data=validation_data, **block["options"])
    return _pack([sub._member(k).state_dict() for k in range(sub.n_nets)]), history


def _pack(states: list) -> dict:
    """A list of ``MLP.state_dict()``\\ s as a few arrays (dask sends a handful of large arrays
    far faster than thousands of small ones): parameters ``(k, n_params)``; the optimizer
    states end to end with their lengths; steps; generator states; each net's optimizer as an
    index into the distinct optimizers."""
    kinds: list = []
    which = np.empty(len(states), dtype=np.int64)
    for k, state in enumerate(states):
        if state["optimizer"] not in kinds:
            kinds.append(state["optimizer"])
        which[k] = kinds.index(state["optimizer"])
    return {"params": np.stack([s["params"] for s in states]),
            "optimizer_state": np.concatenate([s["optimizer_state"] for s in states]),
            "optimizer_state_sizes": np.array([s["optimizer_state"].size for s in states],
                                              dtype=np.int64),
            "optimizer_steps": np.array([s["optimizer_steps"] for s in states], dtype=np.int64),
            "rng_state": np.array([s["rng_state"] for s in states], dtype=np.uint64),
            "optimizers": kinds, "optimizer_index": which}


def _unpack(packed: dict) -> list:
    """:func:`_pack`'s input back."""
    ends = np.cumsum(packed["optimizer_state_sizes"])
    return [{"params": packed["params"][k],
             "optimizer": dict(packed["optimizers"][packed["optimizer_index"][k]]),
             "optimizer_state": packed["optimizer_state"][ends[k] - size:ends[k]],
             "optimizer_steps": int(packed["optimizer_steps"][k]),
             "rng_state": int(packed["rng_state"][k])}
            for k, size in enumerate(packed["optimizer_state_sizes"])]


def _merge(histories: list, starts: list):
    """The blocks' histories as one, as the local fit reports it: a block whose nets recorded no
    validation loss (they all diverged in their first epoch) gets NaN rows when another did."""
    from cprop.population import PopulationHistory

    width = max(h.val_loss.shape[1] for h in histories)
    val = [h.val_loss if h.val_loss.shape[1] == width
           else np.full((h.loss.shape[0], width), np.nan) for h in histories]
    routes = {h.route for h in histories}
    return PopulationHistory(
        loss=np.concatenate([h.loss for h in histories]),
        val_loss=np.concatenate(val),
        epochs=np.concatenate([h.epochs for h in histories]),
        stop_reason=[r for h in histories for r in h.stop_reason],
        best_epoch=np.concatenate([h.best_epoch for h in histories]),
        errors={lo + i: msg for h, lo in zip(histories, starts) for i, msg in h.errors.items()},
        # the workers' route (they agree when they run the same cprop build)
        route=routes.pop() if len(routes) == 1 else "mixed")
