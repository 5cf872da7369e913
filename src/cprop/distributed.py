"""A population's nets split over a dask.distributed cluster: ``Population.fit(..., client=c)``.

``Population.fit`` checks every argument on this machine first (its own validation, the dry run
on net 0 included), then (``Population._fit_on_cluster``, with this module's helpers, which
know nothing of populations: :func:`block_bounds` cuts, :func:`run_blocks` ships and gathers):

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


__all__ = ["block_bounds", "check", "run_blocks", "worker_threads"]

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


def worker_threads(client) -> int:
    """The worker threads of the cluster (the default number of blocks)."""
    return sum(client.nthreads().values())


def run_blocks(client, data, blocks: list, task, keys: list) -> list:
    """``task(data, block)`` for every block on the cluster, in order: ``data`` scattered once
    to every worker, each block to one worker; the results gathered. If a task fails or the
    wait is interrupted, every future is cancelled and the exception propagates (the caller
    has changed nothing yet)."""
    token = uuid.uuid4().hex
    futures: list = []
    try:
        [shared] = client.scatter([data], broadcast=True, hash=False)
        futures.append(shared)
        parts = client.scatter(blocks, hash=False)
        futures += parts
        tasks = [client.submit(task, shared, part, pure=False, key=f"{key}-{token}")
                 for key, part in zip(keys, parts)]
        futures += tasks
        return client.gather(tasks)
    except BaseException:
        client.cancel(futures)
        raise
