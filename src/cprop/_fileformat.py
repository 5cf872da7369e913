"""The ``cprop-mlp`` and ``cprop-population`` file formats: writing and checking the archives
(documented in :mod:`cprop.io`).

This module knows the formats and nothing of :class:`cprop.MLP` or :class:`cprop.Population`:
:meth:`cprop.MLP.save` hands it the header fields and ``net.state_dict()`` (:func:`save`),
:meth:`cprop.Population.save` the fields, the seeds and every member's ``state_dict()``
(:func:`save_population`); :func:`cprop.load` takes the checked values and arrays from
:func:`read` and builds the network or population from them. So ``cprop.mlp`` and
``cprop.population`` import this module and never :mod:`cprop.io`, which imports them: no
import cycle. Both formats share the container, the atomic write, the archive and ``.npy``
checks and the architecture's header fields; each adds its own members and fields.
"""

from __future__ import annotations

import io as _io
import json
import math
import errno
import os
import secrets
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from cprop._registry import DTYPES, HIDDEN, INITS, LOSSES, OPTIMIZERS, OUTPUT
from cprop.optimizers import OPTIONS_KEYS, OptimizerOptions, check_optimizer, state_problem
from cprop._version import __version__

__all__ = ["save", "save_population", "read", "fspath", "check_dataset",
           "check_population_params", "FORMAT", "VERSION", "POPULATION_FORMAT",
           "POPULATION_VERSION", "OPTION_COLUMNS", "MAX_NAME"]

FORMAT = "cprop-mlp"
VERSION = 1
POPULATION_FORMAT = "cprop-population"
POPULATION_VERSION = 1

_MEMBERS = ("header", "params", "optimizer_state", "optimizer_steps", "rng_state")
_HEADER_KEYS = ("format", "version", "cprop_version", "layer_sizes", "hidden", "output", "loss",
                "dtype", "train_biases", "negative_slope", "seed", "init", "optimizer",
                "n_params")
_POP_MEMBERS = ("header", "params", "optimizer_options", "optimizer_state", "optimizer_steps",
                "rng_state", "seeds")
_POP_HEADER_KEYS = ("format", "version", "cprop_version", "layer_sizes", "hidden", "output",
                    "loss", "dtype", "train_biases", "negative_slope", "init", "n_nets",
                    "n_params", "optimizer")
_POP_OPTIMIZER_KEYS = ("name", "nesterov")     # one optimizer kind for every net ...
OPTION_COLUMNS = ("momentum", "beta1", "beta2", "eps", "alpha")  # ... its values per net
_OPTIONAL_KEYS = ("dataset",)
_DATASET_KEYS = ("features", "target", "task", "classes")
_DATASET_OPTIONAL_KEYS = ("categories",)
_MAX_NAME = 1024                    # characters in a column name, class label or category
MAX_NAME = _MAX_NAME
_OPTIMIZER_KEYS = OPTIONS_KEYS
_MAX_HEADER_JSON = 1 << 20          # bytes of JSON we are willing to read
_MAX_NPY_HEADER = 10000             # numpy's own default limit for a .npy header
_ZIP_PREFIXES = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"

try:  # zipfile can read LZMA members if the module exists; its errors are file errors too
    import lzma

    _LZMA_ERRORS: tuple = (lzma.LZMAError,)
except ImportError:  # pragma: no cover
    _LZMA_ERRORS = ()

# What reading a damaged archive can raise from zipfile, zlib, numpy's .npy parser or json.
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
                KeyError, IndexError, TypeError, zlib.error, NotImplementedError, RuntimeError,
                struct.error, OverflowError, MemoryError, SyntaxError) + _LZMA_ERRORS


class _Invalid(Exception):
    """Internal: the file is not a valid cprop model, for the given reason."""


def fspath(path) -> str:
    """``path`` as a str (os.PathLike and bytes accepted); TypeError/ValueError otherwise."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__} "
                        f"{path!r}") from None
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if p == "":
        raise ValueError("path: expected a file name, got ''")
    if "\x00" in p:  # open() would say only "embedded null byte"
        raise ValueError(f"path: a file name cannot contain a NUL character, got {p!r}")
    return p


# -- saving -------------------------------------------------------------------------------------

def _architecture_header(fields: dict, fmt: str, version: int) -> dict:
    """The header fields both formats share, from the network fields ``layer_sizes, hidden,
    output, loss, dtype, train_biases, negative_slope, init``."""
    sizes = [int(s) for s in fields["layer_sizes"]]
    return {
        "format": fmt,
        "version": version,
        "cprop_version": __version__,
        "layer_sizes": sizes,
        "hidden": fields["hidden"],
        "output": fields["output"],
        "loss": fields["loss"],
        "dtype": np.dtype(fields["dtype"]).name,
        "train_biases": bool(fields["train_biases"]),
        "negative_slope": float(fields["negative_slope"]),
        "init": fields["init"],
        "n_params": sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])),
    }


def _header_array(header: dict, keys: tuple) -> np.ndarray:
    """The header as the uint8 UTF-8 JSON member, its fields in the order of ``keys``."""
    text = json.dumps({k: header[k] for k in keys if k in header}, allow_nan=False)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _state_buffers(state: dict, dtype, n_params: int, net: int | None = None) -> tuple:
    """A member's ``(params, optimizer_state, options)`` from its ``state_dict()``, refused
    (ValueError) if they could not be loaded back; ``net``: its index in a population."""
    opt = state["optimizer"]
    options = check_optimizer(*(opt[k] for k in OPTIONS_KEYS))
    params = np.ascontiguousarray(state["params"], dtype=dtype)
    opt_state = np.ascontiguousarray(state["optimizer_state"], dtype=dtype)
    who = "the network's" if net is None else f"net {net}'s"
    if params.shape != (n_params,) or opt_state.shape != (options.slots * n_params,):
        raise ValueError(f"save: {who} parameter or optimizer-state buffer has the wrong size "
                         "(was it replaced instead of assigned into?)")
    if not np.isfinite(params).all():
        if net is not None:
            raise ValueError(_non_finite_params(net))
        raise ValueError("save: the network's parameters contain NaN or infinity; such a network "
                         "cannot be loaded back, so it is not saved")
    if not np.isfinite(opt_state).all():
        if net is not None:
            raise ValueError(f"save: the optimizer state of net {net} contains NaN or infinity; "
                             "such a population cannot be loaded back, so it is not saved (call "
                             "reset_optimizer() on that net and join the nets again with "
                             "Population.from_nets)")
        raise ValueError("save: the optimizer state contains NaN or infinity; call "
                         "net.reset_optimizer() first to save the network without it")
    return params, opt_state, options


def _non_finite_params(net: int) -> str:
    return (f"save: the parameters of net {net} contain NaN or infinity; such a population "
            "cannot be loaded back, so it is not saved")


def _encode(fields: dict, state: dict) -> dict[str, np.ndarray]:
    """The five arrays of a ``cprop-mlp`` file; refuses a network that could not be loaded back.

    ``fields``: the header's network fields (``layer_sizes, hidden, output, loss, dtype,
    train_biases, negative_slope, seed, init`` and ``dataset`` or None); ``state``: the
    network's ``state_dict()``.
    """
    header = _architecture_header(fields, FORMAT, VERSION)
    dtype, sizes, n_params = np.dtype(header["dtype"]), header["layer_sizes"], header["n_params"]
    params, opt_state, options = _state_buffers(state, dtype, n_params)
    header["seed"] = int(fields["seed"])
    header["optimizer"] = options.to_dict()
    dataset = fields.get("dataset")
    if dataset is not None:
        try:
            header["dataset"] = _check_dataset(dataset, sizes)
        except _Invalid as exc:
            raise ValueError(f"save: net.dataset is not valid: {exc}") from None
    return {
        "header": _header_array(header, _HEADER_KEYS + _OPTIONAL_KEYS),
        "params": params,
        "optimizer_state": opt_state,
        "optimizer_steps": np.array([int(state["optimizer_steps"])], dtype=np.int64),
        "rng_state": np.array([int(state["rng_state"])], dtype=np.uint64),
    }


def check_population_params(params: np.ndarray) -> None:
    """ValueError naming the first net whose parameters (``params[i]``) are not finite, as
    :func:`save_population` refuses them (``pop.save`` checks before touching its members)."""
    finite = np.isfinite(params).all(axis=1)
    if not finite.all():
        raise ValueError(_non_finite_params(int(np.argmin(finite))))


def _encode_population(fields: dict, seeds, states: list) -> dict[str, np.ndarray]:
    """The seven arrays of a ``cprop-population`` file; refuses a population that could not be
    loaded back. ``fields`` as for :func:`_encode` (without ``seed`` and ``dataset``),
    ``seeds`` the per-net seeds, ``states`` every member's ``state_dict()``."""
    header = _architecture_header(fields, POPULATION_FORMAT, POPULATION_VERSION)
    dtype, n_params = np.dtype(header["dtype"]), header["n_params"]
    n_nets = len(states)
    seeds = np.asarray(seeds)
    if (n_nets < 1 or seeds.shape != (n_nets,) or seeds.dtype.kind not in "iu"
            or (seeds < 0).any()):
        raise ValueError(f"save: expected {n_nets} seeds (integers in [0, 2**64)), one per net, "
                         f"got an array of shape {seeds.shape} and dtype {seeds.dtype}")
    params = np.empty((n_nets, n_params), dtype=dtype)
    opt_states, options = [], []
    for i, state in enumerate(states):
        params[i], opt_state, opt = _state_buffers(state, dtype, n_params, i)
        if options and (opt.name, opt.nesterov) != (options[0].name, options[0].nesterov):
            raise ValueError(
                f"save: a population file holds one optimizer for all its nets, but net 0 "
                f"holds the state of {_kind(options[0])} and net {i} of {_kind(opt)} (nets "
                "joined by Population.from_nets?); fit the population once so that they share "
                "one, or save the nets one by one with net.save")
        opt_states.append(opt_state)
        options.append(opt)
    header["n_nets"] = n_nets
    header["optimizer"] = {"name": options[0].name, "nesterov": options[0].nesterov}
    return {
        "header": _header_array(header, _POP_HEADER_KEYS),
        "params": params,
        "optimizer_options": np.array([[getattr(o, k) for k in OPTION_COLUMNS] for o in options],
                                      dtype=np.float64),
        "optimizer_state": np.concatenate(opt_states),
        "optimizer_steps": np.array([int(s["optimizer_steps"]) for s in states], dtype=np.int64),
        "rng_state": np.array([int(s["rng_state"]) for s in states], dtype=np.uint64),
        "seeds": seeds.astype(np.uint64),
    }


def _kind(opt: OptimizerOptions) -> str:
    return repr(opt.name) + (" (nesterov)" if opt.nesterov else "")


def _create_temp(directory: str) -> tuple[int, str]:
    # os.open with mode 0o666 gives the permissions an ordinary open() would (umask applied);
    # O_EXCL never reuses an existing file.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(
        os, "O_BINARY", 0)
    for _ in range(100):
        name = os.path.join(directory, f".cprop-save-{secrets.token_hex(8)}.tmp")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"save: could not create a temporary file in {directory!r}")


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(path, fields: dict, state: dict) -> None:
    """Write a network, given as its header ``fields`` and ``state_dict()``, to ``path``
    atomically (see :func:`_encode` and :mod:`cprop.io`; ``net.save(path)`` calls this).

    ``path`` (str or os.PathLike) is used exactly as given. Raises ValueError, writing nothing,
    if the parameters or optimizer state are not finite; OSError (FileNotFoundError for a
    missing directory, IsADirectoryError for a directory, PermissionError ...) naming ``path``
    (never the temporary file) if the file cannot be written, leaving any existing file at
    ``path`` untouched.
    """
    target = fspath(path)
    _write(target, _encode(fields, state))


def save_population(path, fields: dict, seeds, states: list) -> None:
    """Write a population, given as its header ``fields``, per-net ``seeds`` and every member's
    ``state_dict()``, to ``path`` atomically (see :func:`_encode_population`; ``pop.save(path)``
    calls this). Errors as :func:`save`'s."""
    target = fspath(path)
    _write(target, _encode_population(fields, seeds, states))


def _write(target: str, arrays: dict) -> None:
    """``arrays`` as an uncompressed .npz at ``target``, atomically (see :func:`save`)."""
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "save: this is a directory; expected a file name",
                                target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"save: the directory {directory!r} does not exist",
                                target)
    try:
        _write_atomically(target, directory, arrays)
    except OSError as exc:
        if exc.filename == target and exc.filename2 is None:
            raise
        # (the temporary file's name would only confuse: name the user's path)
        if exc.errno is None:
            raise type(exc)(f"save: cannot write {target!r}: {exc}") from None
        raise type(exc)(exc.errno, f"save: cannot write the file ({exc.strerror})",
                        target) from None
    _fsync_directory(directory)


def _write_atomically(target: str, directory: str, arrays: dict) -> None:
    """The .npz of ``arrays`` in a temporary file in ``directory``, renamed over ``target``;
    nothing left behind on failure."""
    fd, tmp = _create_temp(directory)
    done = False
    try:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:
            mode = None
        f = os.fdopen(fd, "wb")
        fd = -1  # the file object owns it now
        with f:
            # A file object: np.savez would append ".npz" to a name without it.
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:  # overwriting: keep the old file's permissions
            try:
                os.chmod(tmp, mode)
            except OSError:
                pass
        os.replace(tmp, target)
        done = True
    finally:
        if not done:
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass


# -- loading ------------------------------------------------------------------------------------

def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> bytes:
    name = info.filename
    if info.file_size > max_bytes:
        raise _Invalid(f"member {name!r} is {info.file_size} bytes, more than the "
                       f"{max_bytes} the network described by the header needs")
    if info.flag_bits & 0x1:
        raise _Invalid(f"member {name!r} is encrypted")
    with zf.open(info) as member:
        data = member.read(max_bytes + 1)  # reading to the end checks the CRC-32
        if len(data) > max_bytes or member.read(1):
            raise _Invalid(f"member {name!r} is longer than its declared size")
    return data


def _parse_npy(name: str, data: bytes) -> tuple[tuple, bool, np.dtype, bytes]:
    """(shape, fortran_order, dtype, raw data) of a .npy blob; refuses object arrays without
    unpickling."""
    bio = _io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(bio)
    except ValueError as exc:
        raise _Invalid(f"array {name!r} is not a .npy array ({exc})") from None
    if version == (1, 0):
        read_header = np.lib.format.read_array_header_1_0
    elif version == (2, 0):
        read_header = np.lib.format.read_array_header_2_0
    else:
        raise _Invalid(f"array {name!r} uses .npy format version {version[0]}.{version[1]}; "
                       "expected 1.0 or 2.0")
    try:
        shape, fortran_order, dtype = read_header(bio, max_header_size=_MAX_NPY_HEADER)
    except ValueError as exc:
        raise _Invalid(f"array {name!r} has a corrupt .npy header ({exc})") from None
    if dtype.hasobject:
        raise _Invalid(f"array {name!r} holds Python objects (pickled data), which cprop "
                       "never loads")
    return shape, fortran_order, dtype, data[bio.tell():]


def _array(name: str, blob: bytes, kind: str, itemsize: int, length: int | tuple | None,
           what: str) -> np.ndarray:
    """The checked array of a .npy blob: dtype kind and size, and shape ``(length,)``
    (any 1-D shape for None, or exactly the tuple ``length``), in native byte order."""
    shape, fortran_order, dtype, raw = _parse_npy(name, blob)
    if dtype.kind != kind or dtype.itemsize != itemsize or dtype.fields is not None:
        raise _Invalid(f"array {name!r} has dtype {dtype}; expected {what}")
    if isinstance(length, tuple):
        if shape != length:
            raise _Invalid(f"array {name!r} has shape {shape}; expected {length}")
    elif len(shape) != 1 or (length is not None and shape[0] != length):
        expected = f"({length},)" if length is not None else "1-D"
        raise _Invalid(f"array {name!r} has shape {shape}; expected {expected}")
    size = math.prod(shape)
    if len(raw) != size * itemsize:
        raise _Invalid(f"array {name!r} holds {len(raw)} bytes of data; its shape {shape} and "
                       f"dtype {dtype} need {size * itemsize}")
    arr = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return arr.astype(dtype.newbyteorder("="), order="C", copy=True)


def _member(zf: zipfile.ZipFile, info: dict, name: str, kind: str, itemsize: int,
            length: int | tuple | None, what: str) -> np.ndarray:
    """Archive member ``name`` read (no more bytes than its expected shape needs) and checked
    by :func:`_array`."""
    size = math.prod(length) if isinstance(length, tuple) else length
    blob = _read_member(zf, info[name], size * itemsize + _MAX_NPY_HEADER + 16)
    return _array(name, blob, kind, itemsize, length, what)


def _state_member(zf: zipfile.ZipFile, info: dict, dtype: np.dtype, slots: int, n_params: int,
                  why: str) -> np.ndarray:
    """The ``optimizer_state`` member: ``slots * n_params`` values of the header's dtype."""
    try:
        return _member(zf, info, "optimizer_state", "f", dtype.itemsize, slots * n_params,
                       dtype.name + " (the header's dtype)")
    except _Invalid as exc:
        if "shape" in str(exc):
            raise _Invalid(f"{exc} ({why})") from None
        raise


def _reject_constant(token: str):
    raise ValueError(f"{token} is not a valid JSON number")


def _unique_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _float_field(value, field: str, low: float = -math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"header field {field!r} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < low:
        raise _Invalid(f"header field {field!r} must be a finite number >= {low:g}, got {value!r}")
    return v


def _str_field(header: dict, field: str, allowed, label: str | None = None) -> str:
    value = header[field]
    field = label or field
    if not isinstance(value, str):
        raise _Invalid(f"header field {field!r} must be a string, got {value!r}")
    if value not in allowed:
        raise _Invalid(f"header field {field!r} is {value!r}; this cprop knows "
                       f"{', '.join(repr(a) for a in allowed)}")
    return value


class _WrongFormat(_Invalid):
    """Internal: a valid file of a cprop format the caller does not read here."""


def _parse_header(arr: np.ndarray, formats: tuple) -> tuple[_Format, dict]:
    """The format (one of ``formats``, by name) and the JSON object of a header member, its
    format and version checked."""
    try:
        text = arr.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Invalid(f"the header is not UTF-8 text ({exc})") from None
    try:
        header = json.loads(text, parse_constant=_reject_constant,
                            object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise _Invalid(f"the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _Invalid(f"the header is a JSON {type(header).__name__}, not an object")
    fmt = header.get("format")
    expected = " or ".join(repr(f) for f in formats)
    if fmt not in formats:
        if "format" not in header:
            raise _Invalid(f"the header has no 'format' field (expected {expected})")
        if isinstance(fmt, str) and fmt in _FORMATS:
            raise _WrongFormat(f"{_FORMATS[fmt].holds} (format {fmt!r}), not "
                               f"{_FORMATS[formats[0]].holds}; cprop.load reads it as a "
                               f"{_FORMATS[fmt].kind}")
        raise _Invalid(f"the header's format is {fmt!r}, not {expected}")
    spec = _FORMATS[fmt]
    version = header.get("version")
    if not _is_int(version):
        raise _Invalid(f"header field 'version' must be an integer, got {version!r}")
    if version != spec.version:
        raise _Invalid(f"it is {fmt} format version {version}; this cprop ({__version__}) "
                       f"reads version {spec.version} only")
    return spec, header


def _check_keys(header: dict, keys: tuple, optional: tuple = ()) -> None:
    missing = [k for k in keys if k not in header]
    extra = sorted(k for k in header if k not in keys + optional)
    if missing:
        raise _Invalid(f"the header lacks field{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(repr(k) for k in missing)}")
    if extra:
        raise _Invalid(f"the header has unknown field{'s' if len(extra) > 1 else ''} "
                       f"{', '.join(repr(k) for k in extra)}")


def _check_architecture(header: dict) -> dict:
    """Type- and range-check the fields both formats share; the values MLP(...) needs."""
    if not isinstance(header["cprop_version"], str):
        raise _Invalid(f"header field 'cprop_version' must be a string, "
                       f"got {header['cprop_version']!r}")
    sizes = header["layer_sizes"]
    if not isinstance(sizes, list) or len(sizes) < 2:
        raise _Invalid(f"header field 'layer_sizes' must be a list of at least 2 integers, "
                       f"got {sizes!r}")
    for k, s in enumerate(sizes):
        if not _is_int(s) or s < 1:
            raise _Invalid(f"header field 'layer_sizes'[{k}] must be an integer >= 1, got {s!r}")
    hidden = _str_field(header, "hidden", HIDDEN)
    output = _str_field(header, "output", OUTPUT)
    loss = _str_field(header, "loss", LOSSES)
    dtype = np.dtype(_str_field(header, "dtype", DTYPES))
    if not isinstance(header["train_biases"], bool):
        raise _Invalid(f"header field 'train_biases' must be true or false, "
                       f"got {header['train_biases']!r}")
    slope = _float_field(header["negative_slope"], "negative_slope", 0.0)
    init = _str_field(header, "init", tuple(INITS) + ("user",))
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if not _is_int(header["n_params"]) or header["n_params"] != n_params:
        raise _Invalid(f"header field 'n_params' is {header['n_params']!r}, but layer_sizes "
                       f"{sizes} have {n_params} parameters")
    return {"layer_sizes": sizes, "hidden": hidden, "output": output, "loss": loss,
            "dtype": dtype, "train_biases": header["train_biases"], "negative_slope": slope,
            "init": init, "n_params": n_params}


def _optimizer_field(header: dict, keys: tuple) -> dict:
    """The header's ``"optimizer"`` object: exactly ``keys``, its name and nesterov checked."""
    opt = header["optimizer"]
    if not isinstance(opt, dict):
        raise _Invalid(f"header field 'optimizer' must be an object, got {opt!r}")
    missing = [k for k in keys if k not in opt]
    extra = sorted(k for k in opt if k not in keys)
    if missing or extra:
        raise _Invalid(f"header field 'optimizer' must have exactly the keys "
                       f"{', '.join(keys)}; "
                       + (f"missing {', '.join(repr(k) for k in missing)}" if missing else
                          f"unknown {', '.join(repr(k) for k in extra)}"))
    _str_field(opt, "name", OPTIMIZERS, "optimizer.name")
    if not isinstance(opt["nesterov"], bool):
        raise _Invalid(f"header field 'optimizer.nesterov' must be true or false, "
                       f"got {opt['nesterov']!r}")
    return opt


def _check_header(header: dict) -> dict:
    """A ``cprop-mlp`` header's values: the architecture's, ``seed``, ``options`` (the
    optimizer) and ``dataset``."""
    values = _check_architecture(header)
    seed = header["seed"]
    if not _is_int(seed) or not 0 <= seed < 2**64:
        raise _Invalid(f"header field 'seed' must be an integer in [0, 2**64), got {seed!r}")
    opt = _optimizer_field(header, _OPTIMIZER_KEYS)
    numbers = {k: _float_field(opt[k], f"optimizer.{k}")
               for k in ("momentum", "beta1", "beta2", "eps", "alpha")}
    try:
        options = check_optimizer(opt["name"], nesterov=opt["nesterov"], **numbers)
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"header field 'optimizer' is not valid ({exc})") from None
    dataset = (_check_dataset(header["dataset"], values["layer_sizes"]) if "dataset" in header
               else None)
    return {**values, "seed": seed, "options": options, "dataset": dataset}


def _check_population_header(header: dict) -> dict:
    """A ``cprop-population`` header's values: the architecture's, ``n_nets`` and the shared
    optimizer ``name`` and ``nesterov``."""
    values = _check_architecture(header)
    n_nets = header["n_nets"]
    if not _is_int(n_nets) or n_nets < 1:
        raise _Invalid(f"header field 'n_nets' must be an integer >= 1, got {n_nets!r}")
    opt = _optimizer_field(header, _POP_OPTIMIZER_KEYS)
    return {**values, "n_nets": n_nets, "optimizer": opt["name"], "nesterov": opt["nesterov"]}


def _names(value, field: str, length: int) -> list[str]:
    if not isinstance(value, list) or len(value) != length:
        raise _Invalid(f"header field {field!r} must be a list of {length} strings, got "
                       f"{_short(value)}")
    for k, name in enumerate(value):
        if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME:
            raise _Invalid(f"header field {field!r}[{k}] must be a non-empty string of at most "
                           f"{_MAX_NAME} characters, got {_short(name)}")
    seen = set()
    for name in value:  # linear: a hostile header may list many names
        if name in seen:
            raise _Invalid(f"header field {field!r} names {_short(name)} more than once")
        seen.add(name)
    return list(value)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_dataset(dataset, layer_sizes) -> dict:
    """``dataset`` checked as :func:`cprop.load` checks a file's (a copy); ValueError saying
    what is wrong. ``cprop train`` calls it before training, so that nothing it would write
    is refused after the work."""
    try:
        return _check_dataset(dataset, list(layer_sizes))
    except _Invalid as exc:
        raise ValueError(str(exc)) from None


def _check_dataset(dataset, layer_sizes) -> dict:
    """The validated ``"dataset"`` header field (see :mod:`cprop.io`), or :class:`_Invalid`.

    Also checks ``net.dataset`` before saving, so a file that could not be loaded is never
    written.
    """
    if not isinstance(dataset, dict):
        raise _Invalid(f"header field 'dataset' must be an object, got {_short(dataset)}")
    keys = sorted(dataset)
    required = sorted(_DATASET_KEYS)
    if sorted(k for k in keys if k not in _DATASET_OPTIONAL_KEYS) != required:
        raise _Invalid(f"header field 'dataset' must have exactly the keys "
                       f"{', '.join(_DATASET_KEYS)} (and optionally "
                       f"{', '.join(_DATASET_OPTIONAL_KEYS)}); got {', '.join(map(repr, keys))}")
    features = dataset["features"]
    categories = _check_categories(dataset.get("categories"), features)
    if categories is None:
        features = _names(features, "dataset.features", layer_sizes[0])
    else:
        features = _names(features, "dataset.features", len(features))
        width = sum(len(categories[f]) if f in categories else 1 for f in features)
        if width != layer_sizes[0]:
            raise _Invalid(f"header field 'dataset.features' with 'dataset.categories' "
                           f"describes {width} encoded inputs, but the network has "
                           f"{layer_sizes[0]}")
    target = _names([dataset["target"]], "dataset.target", 1)[0]
    if target in features:
        raise _Invalid(f"header field 'dataset.target' {_short(target)} is also a feature")
    task = _str_field(dataset, "task", ("classify", "regress"), "dataset.task")
    classes = dataset["classes"]
    if task == "classify":
        if layer_sizes[-1] < 2:
            raise _Invalid("header field 'dataset.task' is 'classify' but the network has "
                           "1 output (a classifier needs one per class, >= 2)")
        classes = _names(classes, "dataset.classes", layer_sizes[-1])
    elif classes is not None:
        raise _Invalid(f"header field 'dataset.classes' must be null for task 'regress', got "
                       f"{_short(classes)}")
    out = {"features": features, "target": target, "task": task, "classes": classes}
    if categories is not None:
        out["categories"] = categories
    return out


def _check_categories(categories, features) -> dict | None:
    """The optional ``"dataset.categories"``: an object naming some of the features (a list
    of strings, checked here first), each with its list of distinct non-empty categories."""
    if categories is None:
        return None
    if not isinstance(categories, dict) or not categories:
        raise _Invalid(f"header field 'dataset.categories' must be an object naming at least "
                       f"one feature, got {_short(categories)}")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise _Invalid(f"header field 'dataset.features' must be a list of strings, got "
                       f"{_short(features)}")
    known = set(features)
    out = {}
    for name, values in categories.items():
        if name not in known:
            raise _Invalid(f"header field 'dataset.categories' names {_short(name)}, which is "
                           "not one of 'dataset.features'")
        if not isinstance(values, list) or not values:
            raise _Invalid(f"header field 'dataset.categories'[{_short(name)}] must be a "
                           f"non-empty list of strings, got {_short(values)}")
        out[name] = _names(values, f"dataset.categories[{_short(name)}]", len(values))
    return out


def _read_mlp_arrays(zf: zipfile.ZipFile, info: dict, values: dict) -> dict:
    n, dtype, opt = values["n_params"], values["dtype"], values["options"]
    return {
        "params": _member(zf, info, "params", "f", dtype.itemsize, n,
                          dtype.name + " (the header's dtype)"),
        "optimizer_state": _state_member(
            zf, info, dtype, opt.slots, n, f"{opt.slots} state vector"
            f"{'s' if opt.slots != 1 else ''} of {n} values for optimizer {opt.name!r}"),
        "optimizer_steps": _member(zf, info, "optimizer_steps", "i", 8, 1, "int64"),
        "rng_state": _member(zf, info, "rng_state", "u", 8, 1, "uint64"),
    }


def _read_population_arrays(zf: zipfile.ZipFile, info: dict, values: dict) -> dict:
    """The arrays of a population; also sets ``values["options"]``, each net's
    OptimizerOptions (the shared name and nesterov with its row of ``optimizer_options``),
    which the length of ``optimizer_state`` depends on."""
    n_nets, n, dtype = values["n_nets"], values["n_params"], values["dtype"]
    arrays = {
        "params": _member(zf, info, "params", "f", dtype.itemsize, (n_nets, n),
                          dtype.name + " (the header's dtype)"),
        "optimizer_options": _member(zf, info, "optimizer_options", "f", 8,
                                     (n_nets, len(OPTION_COLUMNS)), "float64"),
    }
    table = arrays["optimizer_options"]
    if not np.isfinite(table).all():
        raise _Invalid("array 'optimizer_options' contains NaN or infinity")
    options = []
    for i, row in enumerate(table.tolist()):
        try:
            options.append(check_optimizer(values["optimizer"], row[0], values["nesterov"],
                                           *row[1:]))
        except (TypeError, ValueError) as exc:
            raise _Invalid(f"array 'optimizer_options' row {i} (net {i}) is not valid for "
                           f"optimizer {values['optimizer']!r} ({exc})") from None
    values["options"] = options
    slots = sum(o.slots for o in options)
    arrays["optimizer_state"] = _state_member(
        zf, info, dtype, slots, n, f"{slots} state vector{'s' if slots != 1 else ''} of {n} "
        "values in all for the nets' optimizer options")
    for name, kind, what in (("optimizer_steps", "i", "int64"), ("rng_state", "u", "uint64"),
                             ("seeds", "u", "uint64")):
        arrays[name] = _member(zf, info, name, kind, 8, n_nets, what)
    return arrays


def _check_values(values: dict, arrays: dict[str, np.ndarray]) -> None:
    """The numbers' checks: finite, optimizer states sound, step counts >= 0. For a population
    each problem names the first net that has it."""
    options = values["options"]
    nets = isinstance(options, list)
    if not nets:
        options = [options]
    n = values["n_params"]

    def net(i: int) -> str:
        return f" (net {i})" if nets else ""

    params = arrays["params"].reshape(len(options), n)
    finite = np.isfinite(params).all(axis=1)
    if not finite.all():
        raise _Invalid("array 'params' contains NaN or infinity" + net(int(np.argmin(finite))))
    state = arrays["optimizer_state"]
    offset = 0
    for i, opt in enumerate(options):
        mine = state[offset:offset + opt.slots * n]
        offset += opt.slots * n
        if not np.isfinite(mine).all():
            raise _Invalid("array 'optimizer_state' contains NaN or infinity" + net(i))
        problem = state_problem(opt, mine, n)
        if problem:
            raise _Invalid(f"array 'optimizer_state' {problem}" + net(i))
    steps = arrays["optimizer_steps"]
    if (steps < 0).any():
        i = int(np.argmax(steps < 0))
        raise _Invalid(f"array 'optimizer_steps' is negative ({f'net {i}: ' if nets else ''}"
                       f"{steps[i]})")


@dataclass(frozen=True)
class _Format:
    """What distinguishes one cprop file format from another."""

    name: str
    version: int
    members: tuple           # the archive's arrays, "header" first
    keys: tuple              # the header's fields ...
    optional: tuple          # ... and those it may have
    holds: str               # what a file of it holds, for messages
    kind: str                # the class cprop.load returns for it
    check_header: object     # header dict -> values
    read_arrays: object      # (zip, infos, values) -> arrays


_FORMATS = {f.name: f for f in (
    _Format(FORMAT, VERSION, _MEMBERS, _HEADER_KEYS, _OPTIONAL_KEYS, "a single network",
            "cprop.MLP", _check_header, _read_mlp_arrays),
    _Format(POPULATION_FORMAT, POPULATION_VERSION, _POP_MEMBERS, _POP_HEADER_KEYS, (),
            "a population of networks", "cprop.Population", _check_population_header,
            _read_population_arrays),
)}


def _read(f, formats: tuple, seen: dict) -> tuple[str, dict, dict[str, np.ndarray]]:
    """The format, validated header values and arrays of an open archive of one of
    ``formats``, or _Invalid / a library error. ``seen["format"]``: the format, once known."""
    magic = f.read(len(_NPY_MAGIC))
    if not magic:
        raise _Invalid("the file is empty")
    if magic == _NPY_MAGIC:
        raise _Invalid("it is a single .npy array, not an .npz archive of a saved network")
    if not magic.startswith(_ZIP_PREFIXES):
        raise _Invalid("it is not an .npz (ZIP) archive")
    f.seek(0)
    with np.load(f, allow_pickle=False) as npz:
        zf = npz.zip
        infos = zf.infolist()
        names = [i.filename for i in infos]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise _Invalid(f"the archive holds {', '.join(map(repr, duplicates))} more than once")
        info = {i.filename[:-4]: i for i in infos if i.filename.endswith(".npy")}
        spec = _FORMATS[formats[0]]  # (without a header: its arrays are named as missing)
        if "header.npy" in names:  # the header says which format, hence which arrays
            blob = _read_member(zf, info["header"], _MAX_HEADER_JSON + _MAX_NPY_HEADER + 16)
            header_arr = _array("header", blob, "u", 1, None, "uint8 (UTF-8 JSON)")
            spec, header = _parse_header(header_arr, formats)
            seen["format"] = spec.name
        expected = [m + ".npy" for m in spec.members]
        missing = [m for m in expected if m not in names]
        extra = sorted(n for n in set(names) if n not in expected)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(repr(m[:-4]) for m in missing)}")
            if extra:
                parts.append(f"unexpected {', '.join(repr(n) for n in extra)}")
            raise _Invalid(f"the archive must hold exactly the arrays "
                           f"{', '.join(spec.members)}; " + "; ".join(parts))
        _check_keys(header, spec.keys, spec.optional)
        values = spec.check_header(header)
        arrays = spec.read_arrays(zf, info, values)
    return spec.name, values, arrays


def read(path, formats: tuple = (FORMAT, POPULATION_FORMAT)
         ) -> tuple[str, str, dict, dict[str, np.ndarray]]:
    """``(label, format, values, arrays)`` of a saved network or population, every field
    checked.

    ``label`` is the file name as error messages quote it; ``format`` the file's format (one of
    ``formats``); ``values`` the header's checked values (``layer_sizes, hidden, output, loss,
    dtype, train_biases, negative_slope, init, n_params, options`` and for a network ``seed,
    dataset``, for a population ``n_nets`` and ``options`` a list, one per net); ``arrays``
    the data members. Raises FileNotFoundError if ``path`` does not exist, and ValueError naming
    the file and the problem for anything that is not a valid file of one of ``formats`` (a
    file of another cprop format: saying what it holds).
    """
    filename = fspath(path)
    label = repr(filename)
    try:
        f = open(filename, "rb")
    except IsADirectoryError:
        raise ValueError(f"{label} is a directory, not a saved cprop model") from None
    except (FileNotFoundError, PermissionError):
        raise
    except OSError as exc:
        raise ValueError(f"{label} cannot be read as a cprop model: {exc}") from exc
    seen: dict = {}
    with f:
        if os.path.isdir(filename):  # Windows: opening a directory gives PermissionError
            raise ValueError(f"{label} is a directory, not a saved cprop model")
        try:
            fmt, values, arrays = _read(f, tuple(formats), seen)
            _check_values(values, arrays)
        except _WrongFormat as exc:
            raise ValueError(f"{label} holds {exc}") from None
        except _Invalid as exc:
            raise ValueError(f"{label} is not a valid {_what(seen)} file: {exc}") from None
        except _READ_ERRORS as exc:
            raise ValueError(f"{label} is not a valid {_what(seen)} file (truncated or "
                             f"corrupt?): {type(exc).__name__}: {exc}") from exc

    return label, fmt, values, arrays


def _what(seen: dict) -> str:
    return "cprop population" if seen.get("format") == POPULATION_FORMAT else "cprop model"
