"""Hostile files: hypothesis feeds random and mutated bytes to ``cprop.load`` (refuse or load).

Three generators, each a fixed budget of examples (deterministic: ``derandomize=True``):

- random bytes, some starting with the ZIP or ``.npy`` magic so the parsers get past byte 4;
- valid model files (several optimizers, both dtypes) with several mutations at once: byte
  flips, overwrites with special values, insertions, deletions, truncation, duplicated chunks
  (tests/test_save_load.py covers every single flip and every truncation exhaustively);
- structurally valid archives (written by ``np.savez``, so every CRC is right) whose JSON header
  fields and arrays are fuzzed: this reaches the field-by-field validation behind the checksums.

``load`` must either refuse the file with a ValueError that names it, or return a network that
is sound: finite parameters matching its layer sizes, and forward/train_step that work. A crash
kills the pytest process (faulthandler; see tests/test_fuzz.py). ``tools/fuzz.py`` runs these
with a larger budget and ``tools/fuzz_load_atheris.py`` with coverage-guided atheris.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cprop

SCALE = float(os.environ.get("CPROP_FUZZ_SCALE", "1"))
# tools/fuzz.py sets a seed (with pytest --hypothesis-seed) to explore other examples;
# without it the examples are fixed (derandomize), so CI is deterministic.
DERANDOMIZE = "CPROP_FUZZ_SEED" not in os.environ
RUNS = {"random bytes": 0, "mutated files": 0, "fuzzed headers and arrays": 0}


def fuzz_settings(n: int):
    return settings(max_examples=max(1, int(n * SCALE)), derandomize=DERANDOMIZE,
                    database=None,
                    deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                          HealthCheck.data_too_large])


def _trained(optimizer, dtype, sizes, **fit_kw):
    rng = np.random.default_rng(3)
    net = cprop.MLP(sizes, hidden="tanh", dtype=dtype, seed=11)
    X, T = rng.normal(size=(9, sizes[0])), rng.uniform(size=(9, sizes[-1]))
    net.fit(X, T, epochs=2, batch_size=3, lr=0.01, optimizer=optimizer, **fit_kw)
    return net


def _saved_bytes(net) -> bytes:
    d = tempfile.mkdtemp()
    try:
        path = os.path.join(d, "m.npz")
        net.save(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(d)


NETS = [_trained("adam", "float64", [3, 4, 2]), _trained("sgd", "float32", [2, 1]),
        _trained("rprop", "float64", [1, 3, 3, 1]),
        _trained("sgd", "float64", [2, 2, 2], momentum=0.9)]
VALID = [_saved_bytes(net) for net in NETS]


def _parts(net) -> dict:
    with np.load(io.BytesIO(_saved_bytes(net)), allow_pickle=False) as z:
        return {k: z[k].copy() for k in z.files}


PARTS = [_parts(net) for net in NETS]


@pytest.fixture(scope="module")
def path():
    d = tempfile.mkdtemp(prefix="cprop-fuzz-load-")
    yield os.path.join(d, "model.npz")
    shutil.rmtree(d)
    report = os.environ.get("CPROP_FUZZ_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as f:
            f.write(json.dumps({"file": __name__, "runs": RUNS}) + "\n")


def check_load(path: str, data: bytes) -> bool:
    """Write data to path and load it; True if loaded (then the network is checked)."""
    with open(path, "wb") as f:
        f.write(data)
    try:
        net = cprop.load(path)
    except ValueError as exc:
        assert str(exc).startswith(repr(path)), str(exc)
        return False
    sizes = net.layer_sizes
    assert net.params.shape == (sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])),)
    assert np.isfinite(net.params).all()
    x = np.linspace(-1, 1, sizes[0])
    y = net.forward(x)
    assert y.shape == (sizes[-1],) and np.isfinite(y).all()
    t = np.full(sizes[-1], 1.0 / sizes[-1])
    try:  # an absurd but finite state may make a step overflow: refused, params untouched
        net.train_step(x, t, 1e-3, optimizer=net.optimizer.name)
    except FloatingPointError as exc:
        assert "was not applied" in str(exc)
    assert np.isfinite(net.params).all()
    return True


def test_valid_files_load(path):
    # the mutations below start from files that load
    for net, data in zip(NETS, VALID):
        assert check_load(path, data)
        np.testing.assert_array_equal(cprop.load(path).params, net.params)


MAGICS = [b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY", b"\x80\x04"]


@fuzz_settings(500)
@given(prefix=st.sampled_from(MAGICS), body=st.binary(max_size=600))
def test_random_bytes(path, prefix, body):
    RUNS["random bytes"] += 1
    check_load(path, prefix + body)


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        if n == 0:
            break
        pos = draw(st.integers(0, n - 1))
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup",
                                     "special"]))
        if kind == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "set":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[pos:pos + len(chunk)] = chunk
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "dup":
            end = min(n, pos + draw(st.integers(1, 64)))
            data[pos:pos] = data[pos:end]
        else:  # numbers that break size/offset arithmetic
            value = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                          b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80",
                                          b"\x7f\xf0\x00\x00\x00\x00\x00\x00"[::-1]]))
            data[pos:pos + len(value)] = value
    return bytes(data)


@fuzz_settings(800)
@given(data=mutated())
def test_mutated_files(path, data):
    RUNS["mutated files"] += 1
    check_load(path, data)


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 5), st.sampled_from([2**63, 2**64, 2**64 - 1, -1,
                                                                   10**30, 0]),
    st.floats(allow_nan=False), st.sampled_from([1e308, -0.0, 5e-324, 0.5]),
    st.text(max_size=5), st.sampled_from(["float64", "float32", "float16", "sigmoid", "softmax",
                                          "relu", "adam", "sgd", "rprop", "cross_entropy",
                                          "user", "cprop-mlp"]),
    st.lists(st.integers(-1, 4), max_size=4), st.sampled_from([[2**40, 2**40], [1, 2**62]]),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
HEADER_KEYS = ["format", "version", "cprop_version", "layer_sizes", "hidden", "output", "loss",
               "dtype", "train_biases", "negative_slope", "seed", "init", "optimizer", "n_params"]
OPT_KEYS = ["name", "momentum", "nesterov", "beta1", "beta2", "eps", "alpha"]
ARRAY_VALUES = st.sampled_from([math.nan, math.inf, -1.0, 0.0, 1e308, 5e-324, 1.0])


@st.composite
def fuzzed_archive(draw):
    parts = {k: v.copy() for k, v in draw(st.sampled_from(PARTS)).items()}
    header = json.loads(parts["header"].tobytes().decode())
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(["set", "set", "opt", "drop", "add"]))
        if what == "set":
            header[draw(st.sampled_from(HEADER_KEYS))] = draw(JSON_VALUES)
        elif what == "opt" and isinstance(header.get("optimizer"), dict):
            header["optimizer"][draw(st.sampled_from(OPT_KEYS))] = draw(JSON_VALUES)
        elif what == "drop":
            header.pop(draw(st.sampled_from(HEADER_KEYS)), None)
        else:
            header[draw(st.text(max_size=4))] = draw(JSON_VALUES)
    text = json.dumps(header, allow_nan=True)
    if draw(st.integers(0, 9)) == 0:   # not even JSON, or JSON with a NaN / a duplicate key
        text = draw(st.sampled_from([text[:-1], text + "x", text.replace("1", "NaN", 1),
                                     '{"format": 1, "format": 2}', "[]", "\udcff"]))
    parts["header"] = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(["params", "optimizer_state", "optimizer_steps", "rng_state",
                                     "header", "extra"]))
        how = draw(st.sampled_from(["value", "dtype", "shape", "drop", "2d"]))
        arr = parts.get(name, np.zeros(2))
        if how == "value" and arr.size:
            arr = arr.astype(arr.dtype)   # writable copy
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kind = arr.dtype.kind
                value = draw(ARRAY_VALUES) if kind in "fc" else draw(
                    st.integers(-1 if kind == "i" else 0, 255))
                arr.reshape(-1)[draw(st.integers(0, arr.size - 1))] = value
        elif how == "dtype":
            dt = draw(st.sampled_from(["f4", "f8", ">f8", "i8", "u8", "u1", "c16", "f2", "?"]))
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")   # complex -> real casts warn; values don't matter
                arr = arr.astype(dt)
        elif how == "shape":
            arr = np.resize(arr, draw(st.integers(0, max(1, 2 * arr.size))))
        elif how == "2d":
            arr = arr.reshape(1, -1)
        if how == "drop":
            parts.pop(name, None)
        else:
            parts[name] = arr
    buf = io.BytesIO()
    np.savez(buf, **parts)
    return buf.getvalue()


@fuzz_settings(1000)
@given(data=fuzzed_archive())
def test_fuzzed_headers_and_arrays(path, data):
    RUNS["fuzzed headers and arrays"] += 1
    check_load(path, data)
