"""Saving and loading networks and populations: ``net.save(path)``, ``pop.save(path)`` and
``cprop.load(path)``.

File format: ``cprop-mlp`` version 1
------------------------------------

A saved network is a ZIP archive as written by :func:`numpy.savez` (uncompressed), holding
exactly five ``.npy`` members, each a 1-D array of plain numbers:

===================  ================  ===========================================================
member               dtype             contents
===================  ================  ===========================================================
``header``           uint8             UTF-8 JSON object (below)
``params``           float64/float32   ``net.params``: for each layer, W row-major then b; the
                                       header's ``dtype``, length ``n_params``
``optimizer_state``  as ``params``     the optimizer's ``slots * n_params`` state values (SGD
                                       with momentum: velocity; Adam, AdamW: m then v; Rprop:
                                       previous gradient then step sizes; SGD without momentum:
                                       none)
``optimizer_steps``  int64, length 1   optimizer steps taken (Adam's bias correction)
``rng_state``        uint64, length 1  the SplitMix64 generator state (the next epoch's shuffle)
===================  ================  ===========================================================

The header holds exactly these fields::

    {"format": "cprop-mlp", "version": 1, "cprop_version": "0.1.0",
     "layer_sizes": [2, 3, 1], "hidden": "tanh", "output": "sigmoid",
     "loss": "squared_error", "dtype": "float64", "train_biases": true,
     "negative_slope": 0.01, "seed": 12345, "init": "glorot_uniform",
     "optimizer": {"name": "adam", "momentum": 0.0, "nesterov": false, "beta1": 0.9,
                   "beta2": 0.999, "eps": 1e-08, "alpha": 0.0},
     "n_params": 13}

One more field is optional: ``"dataset"``, written only for a network that carries it
(``net.dataset``, set by ``cprop train``), so files without it load as before::

    "dataset": {"features": ["x1", "x2"], "target": "species", "task": "classify",
                "classes": ["setosa", "versicolor", "virginica"]}

``features`` names the ``layer_sizes[0]`` input columns in order (distinct non-empty strings);
``target`` the predicted column; ``task`` is ``"classify"`` (then ``classes`` lists the
``layer_sizes[-1]`` >= 2 distinct labels, output ``k`` being ``classes[k]``) or ``"regress"``
(then ``classes`` is null). Every string is at most 1024 characters; anything else is refused.

``dataset`` has one optional key, ``"categories"``, written only for a model trained with
``cprop train --categorical`` (so other files keep exactly the four keys, and files written
before it existed load as before)::

    "dataset": {"features": ["size", "color"], "target": "price", "task": "regress",
                "classes": null, "categories": {"color": ["blue", "green", "red"]}}

It maps some of the ``features`` (the text columns) to their categories (distinct non-empty
strings, at least one each). Such a column is one-hot encoded before the network: the network's
inputs are the features in order, each numeric one as one input and each categorical one as
one 0/1 input per category in the listed order (here ``size, color=blue, color=green,
color=red``), so ``layer_sizes[0]`` is the number of encoded inputs, and ``features`` then
names the CSV columns rather than the network's inputs. ``cprop predict`` and ``cprop
evaluate`` encode raw CSV rows so; ``net.forward`` and the ONNX graph take the encoded matrix.

``seed`` is a JSON integer in [0, 2**64); ``init`` is how the network was initialised (an
initialiser's name, or ``"user"``); floats are written with Python's shortest round-tripping
repr, so every number comes back bit for bit. A file from a later cprop with another ``version``
is refused with a message naming both versions.

Saving is atomic: the archive is written to a temporary file in the target's directory, flushed
to disk and renamed over ``path`` with :func:`os.replace`, so a failure (full disk, an exception,
a crash) leaves either the old file or no file, never a half-written one, and no temporary file.
The file lands exactly at ``path`` (no ``.npz`` suffix is added). A network whose parameters or
optimizer state hold NaN or infinity is refused with ValueError (it could not be loaded back).

Loading reads the archive with ``np.load(..., allow_pickle=False)`` and checks everything before
building the network: the member names, every ``.npy`` header (dtype, shape; byte order may be
either), the exact data length, each member's CRC-32, every header field's type and value, the
consistency of the shapes with ``layer_sizes`` and of the optimizer state with the optimizer,
and that every number is finite. Nothing in the file is ever executed or unpickled.

File format: ``cprop-population`` version 1
-------------------------------------------

A saved :class:`cprop.Population` (``pop.save(path)``) is the same kind of archive (uncompressed
:func:`numpy.savez`, a uint8 JSON ``header``, plain numeric arrays, written atomically, checked as
strictly on loading) holding exactly seven ``.npy`` members; ``n`` is ``n_nets``, ``P``
``n_params``:

=====================  =================  =========================================================
member                 dtype, shape       contents
=====================  =================  =========================================================
``header``             uint8 (1-D)        UTF-8 JSON object (below)
``params``             as ``dtype``,      ``pop.params``: row ``i`` is net ``i``'s parameters in
                       ``(n, P)``         ``cprop-mlp``'s layout
``optimizer_options``  float64,           per net: ``momentum, beta1, beta2, eps, alpha`` (in this
                       ``(n, 5)``         order), the options of the optimizer whose state net
                                          ``i`` holds
``optimizer_state``    as ``dtype``,      every net's optimizer state (as in ``cprop-mlp``), net
                       1-D                after net: net ``i`` has ``slots_i * P`` values, where
                                          ``slots_i`` follows from the optimizer and net ``i``'s
                                          options (SGD: 1 with momentum, else 0; Adam, AdamW,
                                          Rprop: 2), so the length is ``P * sum(slots_i)``
``optimizer_steps``    int64, ``(n,)``    per net: optimizer steps taken
``rng_state``          uint64, ``(n,)``   per net: its SplitMix64 generator state
``seeds``              uint64, ``(n,)``   per net: the seed it was built with (``pop.seeds``)
=====================  =================  =========================================================

The header holds exactly these fields::

    {"format": "cprop-population", "version": 1, "cprop_version": "0.1.0",
     "layer_sizes": [2, 3, 1], "hidden": "sigmoid", "output": "sigmoid",
     "loss": "squared_error", "dtype": "float64", "train_biases": true,
     "negative_slope": 0.01, "init": "glorot_uniform", "n_nets": 100, "n_params": 13,
     "optimizer": {"name": "adam", "nesterov": false}}

The fields shared with ``cprop-mlp`` mean the same and are checked the same way; ``n_nets`` is
an integer >= 1 that every array's shape must agree with; ``init`` is the members' initialiser if
they share one, else ``"user"`` (information only). ``"optimizer"`` is the one optimizer kind of
every net (its name and ``nesterov``); the values that may differ from net to net are the rows of
``optimizer_options``, each checked as ``fit`` checks options. So a population whose members hold
different optimizers (joined by :meth:`cprop.Population.from_nets`) is refused by ``pop.save``
with ValueError; one ``pop.fit`` leaves every member with the same kind. A net's ``lr`` is not
saved: it is not state (each ``fit`` gives it). ``pop.save`` first settles each member's
optimizer bookkeeping (what ``pop.net(i)`` would return), so ``cprop.load`` gives a population
whose ``net(i).state_dict()`` equals the saved one's and whose training resumes exactly.

:func:`load` returns a :class:`cprop.Population` for such a file (there is no
``Population.load``, as there is no ``MLP.load``); where one network is needed (the command
line's ``predict``, ``evaluate`` and ``export``) a population file is refused with ValueError
saying that it holds a population of networks. Errors name the problem net where there is one
(``array 'params' contains NaN or infinity (net 3)``).

Errors of :func:`load`: a path that does not exist raises FileNotFoundError (and one that may
not be read, PermissionError); anything else that is not a valid cprop model or population - a
directory, an empty or text file, a pickle, a lone ``.npy``, a truncated or corrupted archive,
missing or extra arrays, a header that is not JSON or names another format or version, wrong
types or unknown names in the header, shapes or dtypes that do not match it, NaN/inf values,
object arrays - raises ValueError naming the file and saying what is wrong.
"""

from __future__ import annotations

from cprop import _fileformat
from cprop._fileformat import (_HEADER_KEYS, FORMAT, POPULATION_FORMAT,  # noqa: F401 (documented)
                               POPULATION_VERSION, VERSION)
from cprop.mlp import MLP
from cprop.population import Population

__all__ = ["save", "load", "FORMAT", "VERSION", "POPULATION_FORMAT", "POPULATION_VERSION"]


def save(net, path) -> None:
    """Write ``net`` (a :class:`cprop.MLP` or :class:`cprop.Population`) to ``path``
    atomically (see the module docstring for the formats).

    The same as ``net.save(path)``, which holds the network's lock while saving. ``path`` (str
    or os.PathLike) is used exactly as given. Raises ValueError, writing nothing, if the
    parameters or optimizer state are not finite; OSError (e.g. FileNotFoundError for a missing
    directory) if the file cannot be written, leaving any existing file at ``path`` untouched.
    """
    net.save(path)


def load(path) -> MLP | Population:
    """Read a network written by ``net.save`` or a population written by ``pop.save`` (see the
    module docstring for the formats).

    Returns a new :class:`cprop.MLP` equal to the saved one - parameters, generator state,
    optimizer and its state - so training resumes exactly where it stopped; for a
    ``cprop-population`` file a new :class:`cprop.Population` whose every member is so. Raises
    FileNotFoundError if ``path`` does not exist, and ValueError naming the file and the problem
    for anything that is not a valid cprop model file.
    """
    label, fmt, values, arrays = _fileformat.read(path)
    if fmt == POPULATION_FORMAT:
        return _population(label, values, arrays)
    return _network(label, values, arrays)


def _load_network(path) -> MLP:
    """:func:`load` for callers that need one network (the command line): a population file
    is refused with ValueError saying so."""
    label, _, values, arrays = _fileformat.read(path, (FORMAT,))
    return _network(label, values, arrays)


def _build(label: str, values: dict, seed: int, what: str = "model") -> MLP:
    try:
        return MLP(values["layer_sizes"], hidden=values["hidden"], output=values["output"],
                   loss=values["loss"], dtype=values["dtype"], seed=seed,
                   train_biases=values["train_biases"], negative_slope=values["negative_slope"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{label} is not a valid cprop {what} file: its header describes a "
                         f"network cprop cannot build ({exc})") from None


def _network(label: str, values: dict, arrays: dict) -> MLP:
    net = _build(label, values, values["seed"])
    net.load_state_dict({
        "params": arrays["params"],
        "optimizer": values["options"].to_dict(),
        "optimizer_state": arrays["optimizer_state"],
        "optimizer_steps": int(arrays["optimizer_steps"][0]),
        "rng_state": int(arrays["rng_state"][0]),
    })
    net.init = values["init"]
    net.dataset = values["dataset"]
    return net


def _population(label: str, values: dict, arrays: dict) -> Population:
    n_params = values["n_params"]
    members, offset = [], 0
    for i, options in enumerate(values["options"]):
        net = _build(label, values, int(arrays["seeds"][i]), "population")
        size = options.slots * n_params
        net.load_state_dict({
            "params": arrays["params"][i],
            "optimizer": options.to_dict(),
            "optimizer_state": arrays["optimizer_state"][offset:offset + size],
            "optimizer_steps": int(arrays["optimizer_steps"][i]),
            "rng_state": int(arrays["rng_state"][i]),
        })
        offset += size
        members.append(net)
    return Population.from_nets(members)  # (each member's seed is its seed in the file)
