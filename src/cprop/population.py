"""Populations: many networks of one architecture, held and trained together (``cprop.Population``).

Seed sweeps, learning-rate sweeps, bagging ensembles, k-fold runs and teaching demos train many
small networks at once. A :class:`Population` holds ``n_nets`` networks of one architecture with
their parameters in one array, nets first: ``params`` ``(n_nets, n_params)`` (each row in
:class:`cprop.MLP`'s flat layout), ``weights[l]`` ``(n_nets, n_in, n_out)``, ``biases[l]``
``(n_nets, n_out)``, all writable views of it. Member ``i`` starts exactly as
``cprop.MLP(..., seed=seeds[i])``: ``seed`` is an array of per-net seeds, or an int from which
net ``i`` takes the ``i``-th output of a SplitMix64 generator seeded with it (``cprop.oracle.
SplitMix64``), so any member can be pulled out (:meth:`Population.net`) and any list of
``MLP``\\ s of one architecture joined (:meth:`Population.from_nets`).

``fit`` takes :meth:`cprop.MLP.fit`'s options; ``lr``, ``momentum``, ``beta1``, ``beta2``,
``eps`` and ``alpha`` may be one value or one per net, and ``subsets`` gives each net its own
rows. Each member ends exactly where that net trained alone by ``MLP.fit`` would, with its own
generator (shuffles, validation split) and optimizer state. Early stopping and the refusal of a
diverging step act per net: a net that stops does not stop the others, and the
:class:`PopulationHistory` says which stopped, when and why.

How: each member keeps an ``MLP`` as its engine (its generator and optimizer state), its
parameters synchronised with the population's array around every call, and trains through
``MLP.fit``'s one compiled call. ``n_threads`` spreads the members over threads (the kernels
release the GIL; the results do not depend on the thread count). ``client=`` (a
``distributed.Client``) splits the nets into blocks trained on a dask cluster's workers by this
same ``fit`` (:mod:`cprop.distributed`), with the same result.
"""

from __future__ import annotations

import math
import numbers
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from cprop import _fileformat
from cprop._kernels import _mlp
from cprop.mlp import MLP, initial_params
from cprop.optimizers import check_optimizer
from cprop.oracle import SplitMix64
from cprop._validation import check_learning_rate, check_positive_int

__all__ = ["Population", "PopulationHistory", "derive_seeds", "bootstrap_rows"]

# MLP.fit's numeric options that may differ from net to net
PER_NET = ("lr", "momentum", "beta1", "beta2", "eps", "alpha")


def derive_seeds(seed: int, n_nets: int) -> np.ndarray:
    """The per-net seeds of ``Population(..., seed=seed)``: the first ``n_nets`` outputs of a
    SplitMix64 generator seeded with ``seed`` (uint64)."""
    gen = SplitMix64(seed)
    return np.array([gen.next() for _ in range(n_nets)], dtype=np.uint64)


@dataclass
class PopulationHistory:
    """What :meth:`Population.fit` returns.

    ``loss[i, e]``: net i's training loss in epoch e, as :class:`cprop.mlp.History` records it
    (NaN after the net stopped); ``val_loss`` the same for the validation loss (shape
    ``(n_nets, 0)`` without validation); ``epochs[i]`` the epochs net i ran (a diverged epoch
    not counted); ``stop_reason[i]`` ``"max_epochs"``, ``"early_stopping"`` or ``"diverged"``;
    ``best_epoch[i]`` the (0-based) epoch early stopping restored, -1 if none; ``errors[i]``
    why net i diverged (the message ``MLP.fit`` raised).
    """

    loss: np.ndarray
    val_loss: np.ndarray
    epochs: np.ndarray
    stop_reason: list = field(default_factory=list)
    best_epoch: np.ndarray | None = None
    errors: dict = field(default_factory=dict)
    route: str = "per_net"  # how fit ran: "lanes" (the kernel with nets in SIMD lanes) or
    #                         "per_net" (each member through MLP.fit)

    @property
    def stopped(self) -> np.ndarray:
        """A boolean per net: it stopped before the last epoch (early stopping or divergence)."""
        return np.array([r != "max_epochs" for r in self.stop_reason])


class Population:
    """``n_nets`` networks of one architecture (see the module's documentation)."""

    def __init__(self, layer_sizes, n_nets, *, hidden="sigmoid", output="sigmoid",
                 loss="squared_error", dtype="float64", seed=None, init="glorot_uniform",
                 train_biases=True, negative_slope=0.01):
        if isinstance(n_nets, bool) or not isinstance(n_nets, numbers.Integral):
            raise TypeError(f"n_nets: expected an int >= 1, got {type(n_nets).__name__}")
        if n_nets < 1:
            raise ValueError(f"n_nets: expected an int >= 1, got {n_nets}")
        n_nets = int(n_nets)
        seeds = self._seeds(seed, n_nets)
        if isinstance(init, (list, tuple)):
            raise TypeError("init: a Population takes an initialiser's name; give each net its "
                            "own weights through Population.from_nets(nets) or pop.params")
        make = dict(layer_sizes=layer_sizes, hidden=hidden, output=output, loss=loss,
                    dtype=dtype, init=init, train_biases=train_biases,
                    negative_slope=negative_slope)
        # Net 0 is built (it checks every argument); the others' engines are built when first
        # used (_engine), their starting parameters drawn here from their own seeds, as
        # MLP(..., seed=s) draws them: 10,000 nets in milliseconds instead of a second.
        first = MLP(**make, seed=int(seeds[0]))
        params = initial_params(first, seeds)
        self._adopt([first] + [None] * (n_nets - 1), seeds, params=params, make=make)

    # -- construction ------------------------------------------------------------------------

    @staticmethod
    def _seeds(seed, n_nets: int) -> np.ndarray:
        if seed is None:
            return derive_seeds(int.from_bytes(os.urandom(8), "little"), n_nets)
        if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
            if not 0 <= int(seed) < 2**64:
                raise ValueError(f"seed: expected an int in [0, 2**64), got {seed}")
            return derive_seeds(int(seed), n_nets)
        if not isinstance(seed, np.ndarray) and hasattr(seed, "__len__"):
            seq = list(seed)
            for i, s in enumerate(seq):
                if isinstance(s, bool) or not isinstance(s, numbers.Integral):
                    raise TypeError(f"seed[{i}]: expected an int, got {type(s).__name__}")
                if not 0 <= int(s) < 2**64:
                    raise ValueError(f"seed[{i}]: expected an int in [0, 2**64), got {s}")
            if len(seq) == n_nets:
                return np.array([int(s) for s in seq], dtype=np.uint64)
        arr = np.asarray(seed)
        if arr.shape != (n_nets,) or arr.dtype.kind not in "iu":
            raise ValueError(f"seed: expected an int or {n_nets} integer seeds (one per net), "
                             f"got {type(seed).__name__} of shape {arr.shape}")
        if arr.dtype.kind == "i" and (arr < 0).any():
            i = int(np.argmax(arr < 0))
            raise ValueError(f"seed[{i}]: expected an int in [0, 2**64), got {arr[i]}")
        return arr.astype(np.uint64)

    @classmethod
    def from_nets(cls, nets) -> Population:
        """Join ``MLP``\\ s of one architecture (copies: the nets given are not changed)."""
        nets = list(nets)
        if not nets:
            raise ValueError("nets: expected at least one cprop.MLP")
        first = nets[0]
        for i, net in enumerate(nets):
            if not isinstance(net, MLP):
                raise TypeError(f"nets[{i}]: expected a cprop.MLP, got {type(net).__name__}")
            if _architecture(net) != _architecture(first):
                raise ValueError(f"nets[{i}]: {net!r} is not of the first net's architecture "
                                 f"({first!r})")
        pop = cls.__new__(cls)
        pop._adopt([_copy(net) for net in nets], np.array([n.seed for n in nets],
                                                          dtype=np.uint64))
        return pop

    def _adopt(self, members: list, seeds: np.ndarray, params=None, make=None) -> None:
        """Take ``members`` (MLPs, or None for an engine built when first used from ``make``,
        MLP's arguments but the seed) and their parameters (``params``, else theirs)."""
        first = members[0]
        self._members = members
        self._make = make
        # Optimizer bookkeeping the lanes route owes each member's engine, applied when the
        # member is next used (_member): for net i, the SGD options (an index into _owed_kinds,
        # -1: nothing owed), the steps to add, and whether to start the count afresh (1), not
        # (0) or to decide when it is applied (-1). Arrays, so that a fit of 10,000 nets updates
        # them in a few vector operations.
        n = len(members)
        self._owed_kinds: list = []
        self._owed_opt = np.full(n, -1, dtype=np.int64)
        self._owed_steps = np.zeros(n, dtype=np.int64)
        self._owed_fresh = np.full(n, -1, dtype=np.int8)
        self.seeds = seeds
        self.layer_sizes = list(first.layer_sizes)
        self.hidden, self.output, self.loss_name = first.hidden, first.output, first.loss_name
        self.dtype = first.dtype
        self.train_biases = first.train_biases
        self.negative_slope = first.negative_slope
        self.n_params = first.n_params
        self._params = (np.ascontiguousarray(params) if params is not None
                        else np.ascontiguousarray(np.stack([m.params for m in members])))
        weights, biases, offset = [], [], 0
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            W = self._params[:, offset:offset + n_in * n_out]
            W.shape = (len(members), n_in, n_out)  # a view, never a copy (raises otherwise)
            offset += n_in * n_out
            b = self._params[:, offset:offset + n_out]
            offset += n_out
            weights.append(W)
            biases.append(b)
        self._weights, self._biases = tuple(weights), tuple(biases)

    # -- the parameters ----------------------------------------------------------------------

    @property
    def n_nets(self) -> int:
        return len(self._members)

    def __len__(self) -> int:
        return len(self._members)

    @property
    def params(self) -> np.ndarray:
        """``(n_nets, n_params)``: every net's parameters in ``MLP``'s flat layout (writable)."""
        return self._params

    @params.setter
    def params(self, value) -> None:
        value = np.asarray(value)
        if value.shape != self._params.shape:
            raise ValueError(f"params: expected shape {self._params.shape}, got {value.shape}")
        if not np.isfinite(value).all():
            raise ValueError("params: expected finite values")
        self._params[...] = value

    @property
    def weights(self) -> tuple:
        """``weights[l]``: ``(n_nets, n_in, n_out)`` views of :attr:`params` (writable)."""
        return self._weights

    @property
    def biases(self) -> tuple:
        """``biases[l]``: ``(n_nets, n_out)`` views of :attr:`params` (writable)."""
        return self._biases

    def __repr__(self) -> str:
        return (f"Population({self.layer_sizes}, n_nets={self.n_nets}, hidden={self.hidden!r}, "
                f"output={self.output!r}, loss={self.loss_name!r}, dtype={self.dtype.name!r})")

    def _engine(self, i: int) -> MLP:
        """Member i's MLP object, built now if it was not yet (it starts from its seed, as the
        population did: the same parameters, generator state and optimizer)."""
        net = self._members[i]
        if net is None:
            net = self._members[i] = MLP(**self._make, seed=int(self.seeds[i]))
        return net

    def _owed_kind(self, options: dict) -> int:
        """The index of ``options`` (an optimizer's to_dict) in _owed_kinds, added if new."""
        for k, known in enumerate(self._owed_kinds):
            if known == options:
                return k
        self._owed_kinds.append(options)
        return len(self._owed_kinds) - 1

    def _member(self, i: int) -> MLP:
        """Member i's engine, holding the population's current parameters for it."""
        net = self._engine(i)
        row = self._params[i]
        if not np.isfinite(row).all():
            raise ValueError(f"params[{i}]: net {i} has non-finite parameters")
        if self._owed_opt[i] >= 0:
            # the state MLP.fit would have left: its SGD options, the steps counted (afresh
            # when the optimizer changed), no optimizer state, the generator untouched
            opt = self._owed_kinds[self._owed_opt[i]]
            added, owed_fresh = int(self._owed_steps[i]), int(self._owed_fresh[i])
            self._owed_opt[i] = -1
            state = net.state_dict()
            fresh = state["optimizer"] != opt if owed_fresh < 0 else bool(owed_fresh)
            net.load_state_dict({"params": row, "optimizer": opt,
                                 "optimizer_state": np.empty(0, dtype=self.dtype),
                                 "optimizer_steps": added + (0 if fresh
                                                             else state["optimizer_steps"]),
                                 "rng_state": state["rng_state"]})
        else:
            net.params[:] = row
        return net

    def net(self, i) -> MLP:
        """Member ``i`` as a standalone ``MLP`` (a copy, with its generator and optimizer
        state): what that net trained alone would be."""
        i = self._index(i)
        return _copy(self._member(i))

    def save(self, path) -> None:
        """Write the population to ``path`` (format ``cprop-population``; see
        :func:`cprop.load`, which reads it back, and :mod:`cprop.io`), atomically.

        Every member is saved as ``net(i)`` is: its parameters, generator state, optimizer and
        optimizer state and steps, so a loaded population resumes training exactly. The file
        holds one optimizer (name, nesterov) for all nets, each net with its own values of the
        other options: members joined by :meth:`from_nets` with different optimizers are
        refused. Raises ValueError, writing nothing, if a net's parameters or optimizer state
        are not finite; OSError if the file cannot be written (an existing file is untouched).
        """
        path = _fileformat.fspath(path)
        _fileformat.check_population_params(self._params)  # before _member refuses it
        # _member(i) settles the optimizer bookkeeping the lanes route owes member i
        states = [self._member(i).state_dict() for i in range(self.n_nets)]
        inits = {self._engine(i).init for i in range(self.n_nets)}
        fields = {"layer_sizes": self.layer_sizes, "hidden": self.hidden, "output": self.output,
                  "loss": self.loss_name, "dtype": self.dtype, "train_biases": self.train_biases,
                  "negative_slope": self.negative_slope,
                  "init": inits.pop() if len(inits) == 1 else "user"}
        _fileformat.save_population(path, fields, self.seeds, states)

    def _index(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"i: expected an int, got {type(i).__name__}")
        if not -self.n_nets <= i < self.n_nets:
            raise IndexError(f"i: net {i} out of range for {self.n_nets} nets")
        return int(i) % self.n_nets

    def explain(self, i, x, t, lr: float = 0.5):
        """The derivation of one SGD step of member ``i`` on (x, t) (``MLP.explain``; nothing
        changes)."""
        return self._member(self._index(i)).explain(x, t, lr)

    # -- evaluation --------------------------------------------------------------------------

    def forward(self, X) -> np.ndarray:
        """Every net's outputs: ``(n_nets, n_samples, n_out)`` (``(n_nets, n_out)`` for one
        sample)."""
        return np.stack([self._member(i).forward(X) for i in range(self.n_nets)])

    def loss(self, X, T) -> np.ndarray:
        """Every net's mean loss on (X, T): ``(n_nets,)``."""
        return np.array([self._member(i).loss(X, T) for i in range(self.n_nets)])

    def gradients(self, X, T):
        """Every net's gradient of its loss: ``(grad_weights, grad_biases)`` shaped like
        :attr:`weights` and :attr:`biases`."""
        grads = [self._member(i).gradients(X, T) for i in range(self.n_nets)]
        gw = [np.stack([g[0][l] for g in grads]) for l in range(len(self._weights))]
        gb = [np.stack([g[1][l] for g in grads]) for l in range(len(self._biases))]
        return gw, gb

    def mean_output(self, X) -> np.ndarray:
        """The ensemble's mean output over the nets: ``(n_samples, n_out)``."""
        return self.forward(X).mean(axis=0)

    def vote(self, X) -> np.ndarray:
        """The ensemble's majority class per sample (each net votes its argmax; ties go to the
        lowest class): ``(n_samples,)`` int64. For classifiers (``n_out`` >= 2)."""
        if self.layer_sizes[-1] < 2:
            raise ValueError("vote: needs nets with at least 2 outputs (a class per output); "
                             "use mean_output for one output")
        Y = self.forward(X)
        if Y.ndim == 2:
            Y = Y[:, None, :]
        votes = Y.argmax(axis=2)  # (n_nets, n_samples)
        counts = np.zeros((votes.shape[1], self.layer_sizes[-1]), dtype=np.int64)
        for row in votes:
            counts[np.arange(votes.shape[1]), row] += 1
        out = counts.argmax(axis=1)
        return out if np.ndim(X) == 2 else out[0]

    # -- training ----------------------------------------------------------------------------

    def fit(self, X, T, *, epochs: int = 1, lr=0.1, batch_size: int = 1, shuffle: bool = True,
            optimizer: str = "sgd", momentum=0.0, nesterov: bool = False, beta1=0.9,
            beta2=0.999, eps=1e-8, alpha=0.0, lr_schedule="constant", validation_data=None,
            validation_fraction: float = 0.0, early_stopping: bool = False, patience: int = 10,
            min_delta: float = 0.0, subsets=None, bootstrap: bool = False,
            n_threads: int = 1, client=None, n_blocks=None) -> PopulationHistory:
        """Train every net on (X, T) as ``MLP.fit`` would train it alone (see the module).

        ``lr``, ``momentum``, ``beta1``, ``beta2``, ``eps``, ``alpha``: one value, or an array of
        one per net. ``subsets``: an ``(n_nets, k)`` array of row indices (net i trains on
        ``X[subsets[i]]``, in that order), for bagging and k-fold runs; ``bootstrap=True``
        draws each net's rows instead, ``n_samples`` with replacement from the net's own
        generator (:func:`bootstrap_rows`; the draw advances it, as a shuffle does).
        ``n_threads``: threads
        the nets are spread over (results do not depend on it). Everything is checked before
        any net changes.

        ``client``: a ``distributed.Client`` (``pip install "cprop[dask]"``): the nets are split
        into ``n_blocks`` contiguous blocks (default: one per worker thread of the cluster),
        each trained on a worker by this same ``fit``, and gathered back; the result is the
        local fit's (:mod:`cprop.distributed`). ``n_threads`` is then each block's threads.
        """
        if client is not None:
            from cprop import distributed  # imports dask: only when a cluster is asked for
            distributed.check(client, n_blocks)
        elif n_blocks is not None:
            raise ValueError("n_blocks: only with client= (the blocks of nets sent to a dask "
                             "cluster's workers)")
        n = self.n_nets
        per_net = {name: _per_net(value, name, n)
                   for name, value in (("lr", lr), ("momentum", momentum), ("beta1", beta1),
                                       ("beta2", beta2), ("eps", eps), ("alpha", alpha))}
        # each net's options, checked as MLP.fit checks them and named by the first net that
        # has them: each distinct value (of lr) or combination (of the optimizer's) once
        for lr_i in dict.fromkeys(per_net["lr"]):  # distinct values, in order
            try:
                check_learning_rate(lr_i, self.dtype)
            except (TypeError, ValueError) as exc:
                i = per_net["lr"].index(lr_i)
                raise type(exc)(_per_net_message("lr", i, exc)) from None
        for key, i in _first_nets([per_net[k] for k in ("momentum", "beta1", "beta2", "eps",
                                                        "alpha")]).items():
            values = dict(zip(("momentum", "beta1", "beta2", "eps", "alpha"), key))
            try:
                check_optimizer(optimizer, values["momentum"], nesterov, values["beta1"],
                                values["beta2"], values["eps"], values["alpha"])
            except (TypeError, ValueError) as exc:
                name = str(exc).split(":", 1)[0]
                if name in PER_NET:
                    raise type(exc)(_per_net_message(name, i, exc)) from None
                if n > 1 and any(len(set(v)) > 1 for v in per_net.values()):
                    raise type(exc)(f"{exc} (net {i})") from None  # its own values' doing
                raise
        epochs = check_positive_int(epochs, "epochs")  # (the dry run below takes 1 epoch)
        if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) \
                or n_threads < 1:
            raise ValueError(f"n_threads: expected an int >= 1, got {n_threads!r}")
        if not isinstance(bootstrap, (bool, np.bool_)):
            raise TypeError(f"bootstrap: expected True or False, got {type(bootstrap).__name__}")
        if bootstrap and subsets is not None:
            raise ValueError("bootstrap: give subsets or bootstrap=True, not both")
        rows = self._rows(X, T, subsets)
        common = dict(epochs=epochs, batch_size=batch_size, shuffle=shuffle, optimizer=optimizer,
                      nesterov=nesterov, lr_schedule=lr_schedule,
                      validation_data=validation_data, validation_fraction=validation_fraction,
                      early_stopping=early_stopping, patience=patience, min_delta=min_delta)
        # One dry run on a copy of net 0 checks every shared option (and X, T) the way
        # MLP.fit does, before any net of the population changes.
        probe = _copy(self._member(0))
        Xp, Tp = rows(0)
        try:
            probe.fit(Xp, Tp, **{**common, "epochs": 1},
                      **{k: v[0] for k, v in per_net.items()})
        except FloatingPointError:
            pass  # net 0 diverges: that is its own business, reported below
        lanes = self._lanes_route(X, T, common, per_net, subsets, bootstrap, optimizer)
        if client is not None:  # everything is checked: send the blocks to the cluster
            return self._fit_on_cluster(distributed, client, X, T, common, per_net,
                                        subsets=subsets, bootstrap=bootstrap,
                                        n_threads=n_threads, n_blocks=n_blocks,
                                        lanes=lanes is not None)
        if lanes is not None:
            return self._fit_lanes(lanes, per_net, common, epochs, n_threads)
        members = [self._member(i) for i in range(n)]
        if bootstrap:  # after every check: drawing advances the nets' generators
            n_rows = np.shape(X)[0]
            draws = np.stack([bootstrap_rows(m, n_rows) for m in members])
            rows = self._rows(X, T, draws)
        results: list = [None] * n

        def train(i: int) -> None:
            Xi, Ti = rows(i)
            results[i] = _train_member(members[i], Xi, Ti,
                                       {**common, **{k: v[i] for k, v in per_net.items()}})

        if n_threads == 1 or n == 1:
            for i in range(n):
                train(i)
        else:
            with ThreadPoolExecutor(max_workers=min(n_threads, n)) as pool:
                for future in [pool.submit(train, i) for i in range(n)]:
                    future.result()
        for i, net in enumerate(members):
            self._params[i] = net.params
        return _history(results, epochs)

    # -- blocks of nets as plain data (cprop.distributed) ---------------------------------------

    def _fit_on_cluster(self, distributed, client, X, T, common: dict, per_net: dict, *,
                        subsets, bootstrap, n_threads, n_blocks, lanes: bool):
        """``fit``'s work on a dask cluster (every argument already checked): the nets in
        contiguous blocks (whole kernel blocks on the lanes route), each trained on a worker by
        the local ``fit`` (:func:`_fit_block`), gathered, then written back in order; returns
        the history the local fit would."""
        if n_blocks is None:
            n_blocks = distributed.worker_threads(client)
        lane = _mlp.population_block(self.dtype) if lanes else 1
        bounds = distributed.block_bounds(self.n_nets, n_blocks, lane)
        shared = {k: v for k, v in common.items() if k != "validation_data"}
        rows = None if subsets is None else np.asarray(subsets)
        blocks = []
        for lo, hi in bounds:
            options = {**shared, **{k: np.array(v[lo:hi]) for k, v in per_net.items()},
                       "subsets": None if rows is None else rows[lo:hi], "bootstrap": bootstrap,
                       "n_threads": n_threads}
            block = self._block(lo, hi)
            block["states"] = _pack_states(block["states"])
            blocks.append({"population": block, "options": options})
        results = distributed.run_blocks(
            client, (X, T, common["validation_data"]), blocks, _fit_block,
            [f"cprop-population-fit-{lo}-{hi}" for lo, hi in bounds])
        for (lo, _), (states, _) in zip(bounds, results):
            self._load_states(lo, _unpack_states(states))
        return _merge_histories([history for _, history in results], [lo for lo, _ in bounds])

    def _block(self, lo: int, hi: int) -> dict:
        """Nets lo..hi-1 as plain data: the architecture's arguments, the seeds and each
        member's ``state_dict`` (what :meth:`_from_block` rebuilds, here or on another host)."""
        return {"layer_sizes": list(self.layer_sizes), "hidden": self.hidden,
                "output": self.output, "loss": self.loss_name, "dtype": self.dtype.name,
                "train_biases": self.train_biases, "negative_slope": self.negative_slope,
                "seeds": self.seeds[lo:hi].copy(),
                "states": [self._member(i).state_dict() for i in range(lo, hi)]}

    @classmethod
    def _from_block(cls, block: dict) -> Population:
        arch = {k: v for k, v in block.items() if k not in ("layer_sizes", "seeds", "states")}
        pop = cls(block["layer_sizes"], len(block["seeds"]), seed=block["seeds"], **arch)
        pop._load_states(0, block["states"])
        return pop

    def _load_states(self, lo: int, states) -> None:
        """Members lo, lo + 1, ... take these ``state_dict``\\ s (parameters, optimizer state,
        steps, generator)."""
        for k, state in enumerate(states):
            net = self._engine(lo + k)
            net.load_state_dict(state)
            self._owed_opt[lo + k] = -1
            self._params[lo + k] = net.params

    # -- the lanes route -----------------------------------------------------------------------

    def _lanes_route(self, X, T, common, per_net, subsets, bootstrap, optimizer):
        """(X, T) as the lanes kernel takes them when this fit is one it runs exactly (plain
        SGD, one row per step, in order, nothing per epoch), else None (the per-net route)."""
        if not hasattr(_mlp, "population_sgd_fit") or "lanes" in _DISABLED_ROUTES:
            return None
        if self.n_params > LANES_MAX_PARAMS:
            return None  # a wide net: one net at a time is faster (LANES_MAX_PARAMS)
        if (optimizer != "sgd" or common["batch_size"] != 1 or common["shuffle"] is not False
                or common["nesterov"] or common["lr_schedule"] != "constant"
                or common["validation_data"] is not None or common["validation_fraction"]
                or common["early_stopping"] or subsets is not None or bootstrap
                or any(per_net["momentum"]) or any(per_net["alpha"])):
            return None
        X2 = np.ascontiguousarray(X, dtype=self.dtype)
        T2 = np.ascontiguousarray(T, dtype=self.dtype)
        n_in, n_out = self.layer_sizes[0], self.layer_sizes[-1]
        if X2.ndim != 2 or X2.shape[1] != n_in or T2.shape != (X2.shape[0], n_out):
            return None  # one sample, class labels, ...: MLP.fit's own conversions
        return X2, T2

    def _fit_lanes(self, data, per_net, common, epochs, n_threads) -> PopulationHistory:
        """Every net through the lanes kernel, in chunks of nets (Ctrl-C is seen between
        chunks; with ``n_threads`` > 1 chunks run in parallel, the kernel releasing the GIL);
        a net whose step was refused is trained again from its start through MLP.fit, which
        reports it exactly (rare)."""
        X, T = data
        n = self.n_nets
        start = self._params.copy()
        losses = np.empty((n, epochs))  # the kernel writes every entry (NaN after a stop)
        acts = ([_mlp.ACTIVATION_CODES[self.hidden]] * (len(self.layer_sizes) - 2)
                + [_mlp.ACTIVATION_CODES[self.output]])
        lr = np.array(per_net["lr"], dtype=self.dtype)
        steps = epochs * X.shape[0]
        # about 2e7 multiply-adds (~10-50 ms) per chunk, in whole blocks of the kernel's width;
        # with threads, at least one chunk per thread (as even as whole blocks allow)
        block = _mlp.population_block(self.dtype)
        chunk = max(block, int(2e7 // max(1, steps * self.n_params)) // block * block)
        if n_threads > 1:
            chunk = min(chunk, -(-n // (n_threads * block)) * block)
        chunk = min(n, chunk)
        bounds = [(i, min(i + chunk, n)) for i in range(0, n, chunk)]
        results: list = [None] * n
        sgd_options = {key: check_optimizer("sgd", 0.0, False, *key, 0.0).to_dict()
                       for key in _first_nets([per_net["beta1"], per_net["beta2"],
                                               per_net["eps"]])}

        status = np.zeros(n, dtype=np.int32)

        def run(lo: int, hi: int) -> None:  # the kernel alone: no Python work per net
            status[lo:hi] = _mlp.population_sgd_fit(
                self._params[lo:hi], self.layer_sizes, acts, _mlp.LOSS_CODES[self.loss_name],
                X, T, lr[lo:hi], epochs, self.train_biases, self.negative_slope,
                losses[lo:hi])

        if n_threads == 1 or len(bounds) == 1:
            for lo, hi in bounds:
                run(lo, hi)
        else:
            with ThreadPoolExecutor(max_workers=min(n_threads, len(bounds))) as pool:
                for future in [pool.submit(run, lo, hi) for lo, hi in bounds]:
                    future.result()
        for i in np.flatnonzero(status).tolist():  # MLP.fit runs it again, and reports it
            self._params[i] = start[i]
            net = self._member(i)
            results[i] = _train_member(net, X, T,
                                       {**common, **{k: v[i] for k, v in per_net.items()}})
            self._params[i] = net.params
        # what MLP.fit would leave in each other member's engine, owed until it is next used:
        # each net's SGD options (one per distinct beta1, beta2, eps), vector by vector
        if len(sgd_options) == 1:
            kind = np.full(n, self._owed_kind(next(iter(sgd_options.values()))), dtype=np.int64)
        else:
            keys, which = np.unique(np.column_stack([per_net["beta1"], per_net["beta2"],
                                                     per_net["eps"]]), axis=0,
                                    return_inverse=True)
            kind = np.array([self._owed_kind(sgd_options[tuple(float(v) for v in key)])
                             for key in keys], dtype=np.int64)[which.ravel()]
        ok = status == 0
        had = self._owed_opt >= 0
        same = had & (self._owed_opt == kind)
        self._owed_steps[ok] = np.where(same, self._owed_steps + steps, steps)[ok]
        self._owed_fresh[ok] = np.where(~had, -1, np.where(same, self._owed_fresh, 1))[ok]
        self._owed_opt[ok] = kind[ok]
        # every net the kernel trained ran all epochs; the others report as MLP.fit did
        history = PopulationHistory(loss=losses, val_loss=np.empty((n, 0)),
                                    epochs=np.full(n, epochs, dtype=np.int64),
                                    stop_reason=["max_epochs"] * n,
                                    best_epoch=np.full(n, -1, dtype=np.int64), route="lanes")
        redone = [i for i in range(n) if results[i] is not None]
        if redone:
            part = _history([results[i] for i in redone], epochs)
            for k, i in enumerate(redone):
                history.loss[i] = part.loss[k]
                history.epochs[i] = part.epochs[k]
                history.stop_reason[i] = part.stop_reason[k]
                history.best_epoch[i] = part.best_epoch[k]
                if k in part.errors:
                    history.errors[i] = part.errors[k]
        return history

    def _rows(self, X, T, subsets):
        """A function i -> (X_i, T_i): every net's rows, checked once here."""
        if subsets is None:
            return lambda i: (X, T)
        X2 = np.asarray(X)
        T2 = np.asarray(T)
        n_rows = X2.shape[0] if X2.ndim >= 1 else 0
        idx = np.asarray(subsets)
        if idx.ndim != 2 or idx.shape[0] != self.n_nets or idx.dtype.kind not in "iu":
            raise ValueError(f"subsets: expected an integer array of shape (n_nets={self.n_nets},"
                             f" k) (row indices per net), got shape {idx.shape}")
        if idx.shape[1] == 0:
            raise ValueError("subsets: each net needs at least one row")
        bad = (idx < 0) | (idx >= n_rows)
        if bad.any():
            i, k = map(int, np.argwhere(bad)[0])
            raise ValueError(f"subsets[{i}, {k}]: row {idx[i, k]} is out of range for "
                             f"{n_rows} rows")
        return lambda i: (X2[idx[i]], T2[idx[i]])


# -- helpers ---------------------------------------------------------------------------------

# Routes switched off (tests and benchmarks compare the lanes route with the per-net one).
_DISABLED_ROUTES: frozenset = frozenset()

#: The widest nets (parameters per net) the lanes route takes. A block of the lanes kernel holds
#: n_params x B values (B nets, 512 bytes per parameter with AVX-512); once that outgrows the
#: core's L2 cache, training the nets one at a time (each net's parameters in L1) is faster.
#: Measured with bench/populations.py's crossover table (Intel Xeon, 2 MiB L2, 128 nets, 32
#: rows): lanes / per-net 1.17 at 3,144 parameters (40-64-8), 1.11 at 3,656, 0.97 at 4,168,
#: 0.75 at 4,810 (64-64-10) with AVX-512; with AVX2 (256 bytes a parameter) still 1.04 at
#: 7,210 and 0.75 at 9,610. A fixed count rather than the cache size, so that one machine's
#: choice does not depend on what it reports.
LANES_MAX_PARAMS = 4096



def bootstrap_rows(net: MLP, n_rows: int) -> np.ndarray:
    """``n_rows`` row indices drawn with replacement from ``net``'s own SplitMix64 generator
    (index k = next() mod n_rows, in draw order), advancing it: what ``Population.fit(...,
    bootstrap=True)`` gives that net (``cprop.oracle.bootstrap_rows`` is the same rule)."""
    state = net.state_dict()
    gen = SplitMix64(0)
    gen.state = int(state["rng_state"])
    out = np.array([gen.next() % n_rows for _ in range(n_rows)], dtype=np.int64)
    state["rng_state"] = gen.state
    net.load_state_dict(state)
    return out


def _train_member(net: MLP, X, T, options: dict) -> tuple:
    """``(history, None)``, or ``(history of the epochs before, message)`` when the fit
    diverged (the net then keeps its last finite parameters, as MLP.fit leaves them)."""
    start = net.state_dict()
    try:  # one compiled call for the whole fit
        return net.fit(X, T, **options), None
    except FloatingPointError:
        pass
    # It diverged: run it again from the same state, epoch by epoch, to record the epochs
    # before the refused step (the same steps, so the same end).
    net.load_state_dict(start)
    seen: list = []

    def keep(_net, history):
        seen[:] = [history]
        return False

    try:
        return net.fit(X, T, **options, callbacks=(keep,)), None
    except FloatingPointError as exc:
        return (seen[0] if seen else None), str(exc)


def _architecture(net: MLP) -> tuple:
    return (tuple(net.layer_sizes), net.hidden, net.output, net.loss_name, net.dtype,
            net.train_biases, net.negative_slope)


def _copy(net: MLP) -> MLP:
    """An independent MLP with net's architecture and state (parameters, optimizer, generator)."""
    twin = MLP(net.layer_sizes, hidden=net.hidden, output=net.output, loss=net.loss_name,
               dtype=net.dtype.name, seed=net.seed, train_biases=net.train_biases,
               negative_slope=net.negative_slope)
    twin.load_state_dict(net.state_dict())
    return twin


def _per_net(value, name: str, n: int) -> list:
    """One value or one per net -> a list of n Python numbers (finite-checked by the caller's
    own validators)."""
    if isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, bool):
        return [float(value)] * n
    arr = np.asarray(value)
    if arr.shape != (n,) or arr.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected one number or {n} numbers (one per net), got "
                         f"{type(value).__name__} of shape {arr.shape}")
    out = [float(v) for v in arr]
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise ValueError(f"{name}[{i}]: expected a finite number for net {i}, got {v}")
    return out


def _first_nets(columns: list) -> dict:
    """The distinct rows of per-net option lists (one list per option, one value per net), in
    order, each mapped to the first net that has it. C-speed when every list holds one value
    (the usual case), so that 10,000 nets cost no Python loop."""
    if all(len(dict.fromkeys(c)) == 1 for c in columns):
        return {tuple(c[0] for c in columns): 0}
    first: dict = {}
    for i, key in enumerate(zip(*columns)):
        first.setdefault(key, i)
    return first


def _per_net_message(name: str, i: int, exc: Exception) -> str:
    text = str(exc)
    if text.startswith(name + ":"):
        text = text[len(name) + 1:].strip()
    return f"{name}[{i}]: {text} (net {i})"


def _history(results: list, epochs: int) -> PopulationHistory:
    n = len(results)
    loss = np.full((n, epochs), np.nan)
    has_val = any(h is not None and h.val_loss for h, _ in results)
    val = np.full((n, epochs if has_val else 0), np.nan)
    ran = np.zeros(n, dtype=np.int64)
    best = np.full(n, -1, dtype=np.int64)
    reasons, errors = [], {}
    for i, (h, error) in enumerate(results):
        if h is not None:
            k = len(h.loss)
            loss[i, :k] = h.loss
            if has_val and h.val_loss:
                val[i, :len(h.val_loss)] = h.val_loss
            ran[i] = k
            if h.best_epoch is not None:
                best[i] = h.best_epoch
        if error is not None:
            reasons.append("diverged")
            errors[i] = error
        else:
            reasons.append(h.stop_reason)
    return PopulationHistory(loss=loss, val_loss=val, epochs=ran, stop_reason=reasons,
                             best_epoch=best, errors=errors)


def _fit_block(data, block: dict) -> tuple:
    """On a dask worker: one block of nets trained by the local ``Population.fit``; returns
    each member's ``state_dict`` (packed) and the block's history."""
    X, T, validation_data = data
    sub = Population._from_block({**block["population"],
                                  "states": _unpack_states(block["population"]["states"])})
    history = sub.fit(X, T, validation_data=validation_data, **block["options"])
    return _pack_states([sub._member(k).state_dict() for k in range(sub.n_nets)]), history


def _pack_states(states: list) -> dict:
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


def _unpack_states(packed: dict) -> list:
    """:func:`_pack_states`'s input back."""
    ends = np.cumsum(packed["optimizer_state_sizes"])
    return [{"params": packed["params"][k],
             "optimizer": dict(packed["optimizers"][packed["optimizer_index"][k]]),
             "optimizer_state": packed["optimizer_state"][ends[k] - size:ends[k]],
             "optimizer_steps": int(packed["optimizer_steps"][k]),
             "rng_state": int(packed["rng_state"][k])}
            for k, size in enumerate(packed["optimizer_state_sizes"])]


def _merge_histories(histories: list, starts: list):
    """The blocks' histories as one, as the local fit reports it: a block whose nets recorded no
    validation loss (they all diverged in their first epoch) gets NaN rows when another did."""
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
