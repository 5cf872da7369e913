"""The ``cprop-mlp`` file format: writing and checking the archive (documented in :mod:`cprop.io`).

This module knows the format and nothing of :class:`cprop.MLP`: :meth:`cprop.MLP.save` hands it
the header fields and ``net.state_dict()`` (:func:`save`); :func:`cprop.load` takes the checked
values and arrays from :func:`read` and builds the network from them. So ``cprop.mlp`` imports
this module and never :mod:`cprop.io`, which imports ``cprop.mlp``: no import cycle.
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

import numpy as np

from cprop._registry import DTYPES, HIDDEN, INITS, LOSSES, OPTIMIZERS, OUTPUT
from cprop.optimizers import OPTIONS_KEYS, check_optimizer, state_problem
from cprop._version import __version__

__all__ = ["save", "read", "fspath", "check_dataset", "FORMAT", "VERSION", "MAX_NAME"]

FORMAT = "cprop-mlp"
VERSION = 1

_MEMBERS = ("header", "params", "optimizer_state", "optimizer_steps", "rng_state")
_HEADER_KEYS = ("format", "version", "cprop_version", "layer_sizes", "hidden", "output", "loss",
                "dtype", "train_biases", "negative_slope", "seed", "init", "optimizer",
                "n_params")
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

def _encode(fields: dict, state: dict) -> dict[str, np.ndarray]:
    """The five arrays of the file; refuses a network that could not be loaded back.

    ``fields``: the header's network fields (``layer_sizes, hidden, output, loss, dtype,
    train_biases, negative_slope, seed, init`` and ``dataset`` or None); ``state``: the
    network's ``state_dict()``.
    """
    dtype = np.dtype(fields["dtype"])
    sizes = [int(s) for s in fields["layer_sizes"]]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    params = np.ascontiguousarray(state["params"], dtype=dtype)
    opt = state["optimizer"]
    slots = check_optimizer(*(opt[k] for k in OPTIONS_KEYS)).slots
    opt_state = np.ascontiguousarray(state["optimizer_state"], dtype=dtype)
    if params.shape != (n_params,) or opt_state.shape != (slots * n_params,):
        raise ValueError("save: the network's parameter or optimizer-state buffer has the wrong "
                         "size (was it replaced instead of assigned into?)")
    if not np.isfinite(params).all():
        raise ValueError("save: the network's parameters contain NaN or infinity; such a network "
                         "cannot be loaded back, so it is not saved")
    if not np.isfinite(opt_state).all():
        raise ValueError("save: the optimizer state contains NaN or infinity; call "
                         "net.reset_optimizer() first to save the network without it")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "cprop_version": __version__,
        "layer_sizes": sizes,
        "hidden": fields["hidden"],
        "output": fields["output"],
        "loss": fields["loss"],
        "dtype": dtype.name,
        "train_biases": bool(fields["train_biases"]),
        "negative_slope": float(fields["negative_slope"]),
        "seed": int(fields["seed"]),
        "init": fields["init"],
        "optimizer": {
            "name": opt["name"],
            "momentum": float(opt["momentum"]),
            "nesterov": bool(opt["nesterov"]),
            "beta1": float(opt["beta1"]),
            "beta2": float(opt["beta2"]),
            "eps": float(opt["eps"]),
            "alpha": float(opt["alpha"]),
        },
        "n_params": n_params,
    }
    dataset = fields.get("dataset")
    if dataset is not None:
        try:
            header["dataset"] = _check_dataset(dataset, sizes)
        except _Invalid as exc:
            raise ValueError(f"save: net.dataset is not valid: {exc}") from None
    text = json.dumps(header, allow_nan=False).encode("utf-8")
    return {
        "header": np.frombuffer(text, dtype=np.uint8),
        "params": params,
        "optimizer_state": opt_state,
        "optimizer_steps": np.array([int(state["optimizer_steps"])], dtype=np.int64),
        "rng_state": np.array([int(state["rng_state"])], dtype=np.uint64),
    }


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
    arrays = _encode(fields, state)
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


def _parse_npy(name: str, data: bytes) -> tuple[tuple, np.dtype, bytes]:
    """(shape, dtype, raw data) of a .npy blob; refuses object arrays without unpickling."""
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
    return shape, dtype, data[bio.tell():]


def _array(name: str, blob: bytes, kind: str, itemsize: int, length: int | None,
           what: str) -> np.ndarray:
    shape, dtype, raw = _parse_npy(name, blob)
    if dtype.kind != kind or dtype.itemsize != itemsize or dtype.fields is not None:
        raise _Invalid(f"array {name!r} has dtype {dtype}; expected {what}")
    if len(shape) != 1 or (length is not None and shape[0] != length):
        expected = f"({length},)" if length is not None else "1-D"
        raise _Invalid(f"array {name!r} has shape {shape}; expected {expected}")
    if len(raw) != shape[0] * itemsize:
        raise _Invalid(f"array {name!r} holds {len(raw)} bytes of data; its shape {shape} and "
                       f"dtype {dtype} need {shape[0] * itemsize}")
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=True)


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


def _parse_header(arr: np.ndarray) -> dict:
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
    if fmt != FORMAT:
        if "format" not in header:
            raise _Invalid(f"the header has no 'format' field (expected {FORMAT!r})")
        raise _Invalid(f"the header's format is {fmt!r}, not {FORMAT!r}")
    version = header.get("version")
    if not _is_int(version):
        raise _Invalid(f"header field 'version' must be an integer, got {version!r}")
    if version != VERSION:
        raise _Invalid(f"it is {FORMAT} format version {version}; this cprop ({__version__}) "
                       f"reads version {VERSION} only")
    missing = [k for k in _HEADER_KEYS if k not in header]
    extra = sorted(k for k in header if k not in _HEADER_KEYS + _OPTIONAL_KEYS)
    if missing:
        raise _Invalid(f"the header lacks field{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(repr(k) for k in missing)}")
    if extra:
        raise _Invalid(f"the header has unknown field{'s' if len(extra) > 1 else ''} "
                       f"{', '.join(repr(k) for k in extra)}")
    return header


def _check_header(header: dict) -> dict:
    """Type- and range-check every field; returns the values MLP(...) and the state need."""
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
    seed = header["seed"]
    if not _is_int(seed) or not 0 <= seed < 2**64:
        raise _Invalid(f"header field 'seed' must be an integer in [0, 2**64), got {seed!r}")
    init = _str_field(header, "init", tuple(INITS) + ("user",))

    opt = header["optimizer"]
    if not isinstance(opt, dict):
        raise _Invalid(f"header field 'optimizer' must be an object, got {opt!r}")
    missing = [k for k in _OPTIMIZER_KEYS if k not in opt]
    extra = sorted(k for k in opt if k not in _OPTIMIZER_KEYS)
    if missing or extra:
        raise _Invalid(f"header field 'optimizer' must have exactly the keys "
                       f"{', '.join(_OPTIMIZER_KEYS)}; "
                       + (f"missing {', '.join(repr(k) for k in missing)}" if missing else
                          f"unknown {', '.join(repr(k) for k in extra)}"))
    _str_field(opt, "name", OPTIMIZERS, "optimizer.name")
    if not isinstance(opt["nesterov"], bool):
        raise _Invalid(f"header field 'optimizer.nesterov' must be true or false, "
                       f"got {opt['nesterov']!r}")
    numbers = {k: _float_field(opt[k], f"optimizer.{k}")
               for k in ("momentum", "beta1", "beta2", "eps", "alpha")}
    try:
        options = check_optimizer(opt["name"], nesterov=opt["nesterov"], **numbers)
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"header field 'optimizer' is not valid ({exc})") from None

    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if not _is_int(header["n_params"]) or header["n_params"] != n_params:
        raise _Invalid(f"header field 'n_params' is {header['n_params']!r}, but layer_sizes "
                       f"{sizes} have {n_params} parameters")
    dataset = _check_dataset(header["dataset"], sizes) if "dataset" in header else None
    return {"layer_sizes": sizes, "hidden": hidden, "output": output, "loss": loss,
            "dtype": dtype, "train_biases": header["train_biases"], "negative_slope": slope,
            "seed": seed, "init": init, "options": options, "n_params": n_params,
            "dataset": dataset}


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


def _read(f) -> tuple[dict, dict[str, np.ndarray]]:
    """Validated header values and arrays of an open archive, or _Invalid / a library error."""
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
        expected = [m + ".npy" for m in _MEMBERS]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        missing = [m for m in expected if m not in names]
        extra = sorted(n for n in set(names) if n not in expected)
        if duplicates:
            raise _Invalid(f"the archive holds {', '.join(map(repr, duplicates))} more than once")
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(repr(m[:-4]) for m in missing)}")
            if extra:
                parts.append(f"unexpected {', '.join(repr(n) for n in extra)}")
            raise _Invalid(f"the archive must hold exactly the arrays {', '.join(_MEMBERS)}; "
                           + "; ".join(parts))
        info = {i.filename[:-4]: i for i in infos}

        blob = _read_member(zf, info["header"], _MAX_HEADER_JSON + _MAX_NPY_HEADER + 16)
        header_arr = _array("header", blob, "u", 1, None, "uint8 (UTF-8 JSON)")
        values = _check_header(_parse_header(header_arr))

        n = values["n_params"]
        dtype = values["dtype"]
        slots = values["options"].slots
        specs = {
            "params": ("f", dtype.itemsize, n, dtype.name + " (the header's dtype)"),
            "optimizer_state": ("f", dtype.itemsize, slots * n,
                                dtype.name + " (the header's dtype)"),
            "optimizer_steps": ("i", 8, 1, "int64"),
            "rng_state": ("u", 8, 1, "uint64"),
        }
        arrays = {}
        for name, (kind, itemsize, length, what) in specs.items():
            blob = _read_member(zf, info[name], length * itemsize + _MAX_NPY_HEADER + 16)
            try:
                arrays[name] = _array(name, blob, kind, itemsize, length, what)
            except _Invalid as exc:
                if name == "optimizer_state" and "shape" in str(exc):
                    raise _Invalid(f"{exc} ({slots} state vector{'s' if slots != 1 else ''} of "
                                   f"{n} values for optimizer {values['options'].name!r})"
                                   ) from None
                raise
    return values, arrays


def _check_values(values: dict, arrays: dict[str, np.ndarray]) -> None:
    n = values["n_params"]
    opt = values["options"]
    if not np.isfinite(arrays["params"]).all():
        raise _Invalid("array 'params' contains NaN or infinity")
    state = arrays["optimizer_state"]
    if not np.isfinite(state).all():
        raise _Invalid("array 'optimizer_state' contains NaN or infinity")
    problem = state_problem(opt, state, n)
    if problem:
        raise _Invalid(f"array 'optimizer_state' {problem}")
    if arrays["optimizer_steps"][0] < 0:
        raise _Invalid(f"array 'optimizer_steps' is negative ({arrays['optimizer_steps'][0]})")


def read(path) -> tuple[str, dict, dict[str, np.ndarray]]:
    """``(label, values, arrays)`` of a saved network, every field checked.

    ``label`` is the file name as error messages quote it; ``values`` the header's checked
    values (``layer_sizes, hidden, output, loss, dtype, train_biases, negative_slope, seed,
    init, options, n_params, dataset``); ``arrays`` the four data members. Raises
    FileNotFoundError if ``path`` does not exist, and ValueError naming the file and the problem
    for anything that is not a valid cprop model file.
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
    with f:
        if os.path.isdir(filename):  # Windows: opening a directory gives PermissionError
            raise ValueError(f"{label} is a directory, not a saved cprop model")
        try:
            values, arrays = _read(f)
            _check_values(values, arrays)
        except _Invalid as exc:
            raise ValueError(f"{label} is not a valid cprop model file: {exc}") from None
        except _READ_ERRORS as exc:
            raise ValueError(f"{label} is not a valid cprop model file (truncated or corrupt?): "
                             f"{type(exc).__name__}: {exc}") from exc

    return label, values, arrays
