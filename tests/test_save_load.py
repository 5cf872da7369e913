"""Saving and loading networks (DESIGN.md "Files"; the format is documented in cprop.io).

Round trips are bit-exact; a loaded network resumes training exactly as if it had never been
saved; every kind of bad file raises ValueError naming the file; saving is atomic.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import pickle
import re
import struct
import zipfile

import numpy as np
import pytest

import cprop
import cprop.io
from cprop.optimizers import OptimizerOptions

_rng = np.random.default_rng(20240611)
X = _rng.normal(size=(11, 3))
T_REG = _rng.uniform(size=(11, 2))
T_LABELS = _rng.integers(0, 2, size=11)
MEMBERS = ("header", "params", "optimizer_state", "optimizer_steps", "rng_state")


# -- helpers --------------------------------------------------------------------------------------

def targets(net):
    return T_LABELS if net.loss_name == "cross_entropy" else T_REG


def trained(**kw):
    """A small network with non-trivial parameters, generator and optimizer state."""
    opt = kw.pop("optimizer", "adam")
    fit_kw = kw.pop("fit_kw", {})
    sizes = kw.pop("sizes", [3, 4, 2])
    kw.setdefault("seed", 5)
    net = cprop.MLP(sizes, **kw)
    lr = 0.01 if opt == "rprop" else 0.05
    net.fit(X, targets(net), epochs=2, batch_size=4, optimizer=opt, lr=lr, **fit_kw)
    return net


def state_of(net):
    return {
        "layer_sizes": list(net.layer_sizes), "hidden": net.hidden, "output": net.output,
        "loss": net.loss_name, "dtype": net.dtype, "seed": net.seed,
        "train_biases": net.train_biases, "negative_slope": net.negative_slope,
        "init": net.init, "opt": net._opt,
        "params": net._params.copy(), "rng": net._rng.copy(),
        "opt_state": net._opt_state.copy(), "opt_steps": net._opt_steps.copy(),
    }


def bits_equal(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same(a, b):
    sa, sb = state_of(a), state_of(b)
    for key in sa:
        if isinstance(sa[key], np.ndarray):
            assert bits_equal(sa[key], sb[key]), key
        else:
            assert sa[key] == sb[key], key
            assert type(sa[key]) is type(sb[key]), key


def same_net(a, b) -> bool:
    try:
        assert_same(a, b)
    except AssertionError:
        return False
    return True


def read_parts(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_parts(path, parts, allow_pickle=False):
    with open(path, "wb") as f:
        np.savez(f, allow_pickle=allow_pickle, **parts)


def header_of(parts):
    return json.loads(parts["header"].tobytes().decode("utf-8"))


def header_array(obj_or_text):
    text = obj_or_text if isinstance(obj_or_text, (str, bytes)) else json.dumps(obj_or_text)
    if isinstance(text, str):
        text = text.encode("utf-8")
    return np.frombuffer(text, dtype=np.uint8).copy()


def npy_bytes(arr, header_dict=None):
    """A .npy blob for arr, optionally with a forged header dict (shape/descr)."""
    if header_dict is None:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, arr, allow_pickle=False)
        return buf.getvalue()
    text = repr(header_dict).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + arr.tobytes()


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(name, data)


@pytest.fixture
def saved(tmp_path):
    """(network, path of its saved file)."""
    net = trained(hidden="tanh", optimizer="adam")
    path = tmp_path / "model.npz"
    net.save(path)
    return net, path


def refuses(path, pattern=None):
    """load(path) raises ValueError naming the file (and matching pattern); returns the message."""
    with pytest.raises(ValueError) as info:
        cprop.load(path)
    msg = str(info.value)
    assert os.fspath(path) in msg, msg
    if pattern is not None:
        assert re.search(pattern, msg), msg
    return msg


# -- round trips ----------------------------------------------------------------------------------

CONFIGS = []
for _dt in ("float64", "float32"):
    for _hidden in ("sigmoid", "tanh", "relu", "leaky_relu", "identity"):
        CONFIGS.append(dict(dtype=_dt, hidden=_hidden))
    for _out, _loss in (("sigmoid", "squared_error"), ("identity", "squared_error"),
                        ("softmax", "squared_error"), ("softmax", "cross_entropy"),
                        ("sigmoid", "binary_cross_entropy"), ("exp", "poisson"),
                        ("exp", "squared_error")):
        CONFIGS.append(dict(dtype=_dt, output=_out, loss=_loss))
    CONFIGS += [
        dict(dtype=_dt, hidden="leaky_relu", negative_slope=0.3),
        dict(dtype=_dt, train_biases=False, optimizer="rprop"),
        dict(dtype=_dt, optimizer="sgd"),
        dict(dtype=_dt, optimizer="sgd", fit_kw=dict(momentum=0.9, nesterov=True, alpha=1e-3)),
        dict(dtype=_dt, sizes=[3, 2]),
        dict(dtype=_dt, sizes=[3, 5, 4, 2], hidden="relu", init="he_normal"),
        dict(dtype=_dt, seed=2**64 - 1),
        dict(dtype=_dt, seed=None),
    ]


def _config_id(cfg):
    return "-".join(f"{k}={v}" for k, v in cfg.items())


@pytest.mark.parametrize("cfg", CONFIGS, ids=[_config_id(c) for c in CONFIGS])
def test_round_trip_is_bit_exact(tmp_path, cfg):
    cfg = dict(cfg)
    opt = cfg.get("optimizer", "adam")
    fit_kw = cfg.get("fit_kw", {})
    net = trained(**cfg)
    path = tmp_path / "net.npz"
    net.save(path)
    back = cprop.load(path)
    assert isinstance(back, cprop.MLP)
    assert_same(net, back)
    assert bits_equal(net.forward(X), back.forward(X))
    assert back.activations == net.activations
    assert repr(back) == repr(net)

    parts = read_parts(path)
    assert set(parts) == set(MEMBERS)
    assert parts["header"].dtype == np.uint8
    assert parts["params"].dtype == net.dtype and parts["optimizer_state"].dtype == net.dtype
    assert parts["optimizer_steps"].dtype == np.int64 and parts["optimizer_steps"].shape == (1,)
    assert parts["rng_state"].dtype == np.uint64 and parts["rng_state"].shape == (1,)
    h = header_of(parts)
    assert h["format"] == "cprop-mlp" and h["version"] == 1
    assert h["cprop_version"] == cprop.__version__
    assert h["layer_sizes"] == net.layer_sizes
    assert (h["hidden"], h["output"], h["loss"], h["dtype"]) == (
        net.hidden, net.output, net.loss_name, net.dtype.name)
    assert h["train_biases"] is net.train_biases
    assert h["negative_slope"] == net.negative_slope
    assert h["seed"] == net.seed
    assert h["n_params"] == net.n_params
    assert h["optimizer"]["name"] == opt
    assert OptimizerOptions(**h["optimizer"]) == net.optimizer
    if "momentum" in fit_kw:
        assert h["optimizer"]["momentum"] == fit_kw["momentum"]

    # the loaded network owns fresh, writable, kernel-ready buffers
    for arr in (back._params, back._opt_state, back._rng, back._opt_steps):
        assert arr.flags.c_contiguous and arr.flags.writeable and arr.flags.owndata
    assert back._opt_state.dtype == back.dtype and back._opt_steps.dtype == np.int64
    assert back._rng.dtype == np.uint64
    assert back.weights[0].base is back._params


def test_user_init_and_paths(tmp_path):
    init = [(np.full((3, 2), 0.25), np.array([0.5, -0.5]))]
    net = cprop.MLP([3, 2], init=init, seed=1)
    assert net.init == "user"
    for path in (tmp_path / "a.npz", str(tmp_path / "b.npz"), tmp_path / "no_suffix",
                 str(tmp_path / "model.bin")):
        net.save(path)
        assert os.path.isfile(path)
        assert_same(net, cprop.load(path))
        assert_same(net, cprop.load(os.fspath(path)))
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz", "model.bin", "no_suffix"]
    cprop.io.save(net, tmp_path / "direct")
    assert_same(net, cprop.load(tmp_path / "direct"))
    assert cprop.load is cprop.io.load


def test_bad_path_arguments(tmp_path):
    net = cprop.MLP([2, 1], seed=0)
    with pytest.raises(TypeError, match="path"):
        net.save(42)
    with pytest.raises(TypeError, match="path"):
        cprop.load(None)
    with pytest.raises(FileNotFoundError):
        cprop.load(tmp_path / "does-not-exist.npz")


def test_save_does_not_change_the_network(tmp_path):
    net = trained(optimizer="sgd", fit_kw=dict(momentum=0.5))
    twin = trained(optimizer="sgd", fit_kw=dict(momentum=0.5))
    before = state_of(net)
    buffers = (net._params, net._rng, net._opt_state, net._opt_steps, net.weights[0])
    net.save(tmp_path / "m.npz")
    net.save(tmp_path / "m.npz")  # overwriting too
    assert_same(net, twin)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            assert bits_equal(value, state_of(net)[key])
    assert all(a is b for a, b in zip(buffers, (net._params, net._rng, net._opt_state,
                                                net._opt_steps, net.weights[0])))
    h1 = net.fit(X, T_REG, epochs=2, batch_size=3, optimizer="sgd", momentum=0.5)
    h2 = twin.fit(X, T_REG, epochs=2, batch_size=3, optimizer="sgd", momentum=0.5)
    assert h1.loss == h2.loss
    assert_same(net, twin)


def test_loaded_networks_are_independent(saved):
    net, path = saved
    a, b = cprop.load(path), cprop.load(path)
    a.params[:] = 0
    a.fit(X, T_REG, epochs=1, optimizer="adam")
    assert_same(b, net)
    assert_same(cprop.load(path), net)


# -- resuming training ----------------------------------------------------------------------------

RESUME = [
    dict(optimizer="sgd"),
    dict(optimizer="sgd", momentum=0.9),
    dict(optimizer="sgd", momentum=0.8, nesterov=True, alpha=1e-3),
    dict(optimizer="adam"),
    dict(optimizer="adam", beta1=0.8, beta2=0.99, eps=1e-6, alpha=1e-4),
    dict(optimizer="adamw", alpha=0.1),
    dict(optimizer="adamw", beta1=0.8, alpha=0.01, dtype="float32"),
    dict(optimizer="rprop", batch_size=11, lr=0.01),
    dict(optimizer="adam", dtype="float32"),
    dict(optimizer="rprop", dtype="float32", lr=0.01),
    dict(optimizer="sgd", momentum=0.9, train_biases=False),
    dict(optimizer="adam", output="softmax", loss="cross_entropy"),
    dict(optimizer="sgd", momentum=0.9, output="sigmoid", loss="binary_cross_entropy",
         hidden="leaky_relu", negative_slope=0.2),
]


@pytest.mark.parametrize("cfg", RESUME, ids=[_config_id(c) for c in RESUME])
def test_resume_training_exactly(tmp_path, cfg):
    cfg = dict(cfg)
    net_kw = {k: cfg.pop(k) for k in ("dtype", "train_biases", "output", "loss", "hidden",
                                       "negative_slope") if k in cfg}
    fit_kw = dict(batch_size=3, lr=0.05, shuffle=True)
    fit_kw.update(cfg)

    def fresh():
        return cprop.MLP([3, 4, 2], seed=99, **net_kw)

    a = fresh()
    T = targets(a)
    ha = a.fit(X, T, epochs=2, **fit_kw)

    b = fresh()
    hb1 = b.fit(X, T, epochs=1, **fit_kw)
    path = tmp_path / "half.npz"
    b.save(path)
    c = cprop.load(path)
    assert_same(b, c)
    hc = c.fit(X, T, epochs=1, **fit_kw)

    assert hb1.loss + hc.loss == ha.loss
    assert hb1.lr + hc.lr == ha.lr
    assert_same(a, c)

    if fit_kw["batch_size"] >= len(X):
        return  # one full batch: the shuffle does not matter
    # the test is sensitive to the generator state: restarting it changes the second epoch
    d = cprop.load(path)
    d._rng[0] = d.seed
    d.fit(X, T, epochs=1, **fit_kw)
    assert not np.array_equal(d.params, a.params)


def test_resume_with_train_step_and_reset_optimizer(tmp_path):
    a = cprop.MLP([3, 4, 2], seed=3)
    b = cprop.MLP([3, 4, 2], seed=3)
    for net in (a, b):
        net.train_step(X, T_REG, lr=0.1, optimizer="rprop")
    path = tmp_path / "r"
    b.save(path)
    b = cprop.load(path)
    assert a.train_step(X, T_REG, lr=0.1, optimizer="rprop") == \
        b.train_step(X, T_REG, lr=0.1, optimizer="rprop")
    assert_same(a, b)
    b.reset_optimizer()  # Rprop state with step sizes 0 and no steps: still a valid file
    b.save(path)
    assert_same(b, cprop.load(path))


# -- bad files ------------------------------------------------------------------------------------

def test_not_a_model_at_all(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a network\n")
    refuses(text, "not an .npz")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    refuses(empty, "empty")
    refuses(tmp_path, "directory")
    lone = tmp_path / "lone.npy"
    np.save(lone, np.zeros(3))
    refuses(lone, r"single \.npy")
    no_members = tmp_path / "nothing.npz"
    write_zip(no_members, [])
    refuses(no_members, "missing")
    pk = tmp_path / "pk"
    pk.write_bytes(b"PK\x03\x04")
    refuses(pk)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    refuses(junk)


class _Evil:
    executed = False

    def __reduce__(self):
        return (_mark_executed, ())


def _mark_executed():  # pragma: no cover - must never run
    _Evil.executed = True
    return 0


def test_pickles_are_never_executed(tmp_path, saved):
    net, path = saved
    whole = tmp_path / "evil.pkl"
    whole.write_bytes(pickle.dumps({"params": _Evil()}))
    refuses(whole, "not an .npz")

    parts = read_parts(path)
    for name in MEMBERS:
        p = dict(parts)
        p[name] = np.array([_Evil(), 1.0], dtype=object)
        bad = tmp_path / f"object_{name}.npz"
        write_parts(bad, p, allow_pickle=True)
        refuses(bad, f"'{name}'.*Python objects")
    assert not _Evil.executed


def test_truncated_at_every_length(tmp_path, saved):
    _, path = saved
    data = path.read_bytes()
    bad = tmp_path / "cut.npz"
    for n in range(len(data)):
        bad.write_bytes(data[:n])
        refuses(bad)


def _member_data_spans(data: bytes):
    """(start, end) byte ranges of every member's stored data."""
    spans = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            off = info.header_offset
            name_len, extra_len = struct.unpack("<HH", data[off + 26: off + 30])
            start = off + 30 + name_len + extra_len
            spans.append((start, start + info.compress_size))
    return spans


@pytest.mark.parametrize("writer", ["savez", "savez_compressed"])
def test_flipped_bytes_are_caught_or_harmless(tmp_path, writer):
    net = trained(hidden="relu", optimizer="sgd", fit_kw=dict(momentum=0.9))
    path = tmp_path / "orig.npz"
    if writer == "savez":
        net.save(path)
    else:  # cprop writes uncompressed archives but reads compressed ones
        with open(path, "wb") as f:
            np.savez_compressed(f, **read_parts_of(net, tmp_path))
        assert_same(net, cprop.load(path))
    data = path.read_bytes()
    in_data = np.zeros(len(data), dtype=bool)
    for start, end in _member_data_spans(data):
        # a deflate stream's last byte may end in padding bits that nothing reads
        in_data[start:end if writer == "savez" else end - 1] = True
    rng = np.random.default_rng(7)
    bad = tmp_path / "flipped.npz"
    refused = harmless = 0
    for pos in range(len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= int(rng.integers(1, 256))
        bad.write_bytes(bytes(flipped))
        try:
            back = cprop.load(bad)
        except ValueError as exc:
            assert os.fspath(bad) in str(exc)
            refused += 1
            continue
        # loaded: the flip hit a field nobody reads (a timestamp, the local header's copies of
        # sizes and CRC, padding bits), never the data itself (CRC-32 checked)
        assert not in_data[pos], f"flip at byte {pos} inside member data went unnoticed"
        assert_same(net, back)
        harmless += 1
    assert refused > 0.75 * len(data), (refused, harmless)


def read_parts_of(net, tmp_path):
    p = tmp_path / "_parts.npz"
    net.save(p)
    parts = read_parts(p)
    p.unlink()
    return parts


def _drop(name):
    def mutate(parts):
        del parts[name]
    return mutate


def _header(**changes):
    def mutate(parts):
        h = header_of(parts)
        for key, value in changes.items():
            if value is _DELETE:
                del h[key]
            else:
                h[key] = value
        parts["header"] = header_array(h)
    return mutate


def _optimizer(**changes):
    def mutate(parts):
        h = header_of(parts)
        for key, value in changes.items():
            if value is _DELETE:
                del h["optimizer"][key]
            else:
                h["optimizer"][key] = value
        parts["header"] = header_array(h)
    return mutate


def _header_text(transform):
    def mutate(parts):
        parts["header"] = header_array(transform(parts["header"].tobytes().decode()))
    return mutate


def _set(name, make):
    def mutate(parts):
        parts[name] = make(parts[name])
    return mutate


def _nan_at(name, value):
    def make(a):
        a = a.copy()
        a[len(a) // 2] = value
        return a
    return _set(name, make)


_DELETE = object()

# (id, mutation, message pattern); the saved network is [3, 4, 2] float64 tanh + adam.
BAD_PARTS = [
    *[(f"missing-{m}", _drop(m), f"missing '{m}'") for m in MEMBERS],
    ("extra-array", lambda p: p.update(extra=np.zeros(2)), "unexpected 'extra.npy'"),
    ("version-2", _header(version=2), "version 2.*reads version 1"),
    ("version-0", _header(version=0), "version 0.*reads version 1"),
    ("version-string", _header(version="1"), "'version' must be an integer"),
    ("version-bool", _header(version=True), "'version' must be an integer"),
    ("no-version", _header(version=_DELETE), "'version' must be an integer"),
    ("format-name", _header(format="keras"), "format is 'keras'"),
    ("no-format", _header(format=_DELETE), "no 'format' field"),
    ("header-not-json", _set("header", lambda a: header_array("layer_sizes: [3, 4, 2]")),
     "not valid JSON"),
    ("header-not-utf8", _set("header", lambda a: header_array(b"\xff\xfe{}")), "UTF-8"),
    ("header-empty", _set("header", lambda a: np.zeros(0, np.uint8)), "not valid JSON"),
    ("header-list", _set("header", lambda a: header_array([1, 2])), "not an object"),
    ("header-deep", _set("header", lambda a: header_array("[" * 100000 + "]" * 100000)),
     "not valid JSON"),
    ("header-nan", _header_text(lambda t: t.replace('"negative_slope": 0.01',
                                                    '"negative_slope": NaN')), "NaN"),
    ("header-overflow", _header_text(lambda t: t.replace('"alpha": 0.0', '"alpha": 1e400')),
     "optimizer.alpha"),
    ("header-duplicate-key", _header_text(lambda t: t.replace('{', '{"loss": "x", ', 1)),
     "duplicate key 'loss'"),
    ("header-float32", _set("header", lambda a: a.astype(np.float32)), "'header' has dtype"),
    ("header-2d", _set("header", lambda a: a.reshape(1, -1)), "'header' has shape"),
    ("missing-field", _header(loss=_DELETE), "lacks field 'loss'"),
    ("extra-field", _header(comment="hi"), "unknown field 'comment'"),
    ("cprop_version-int", _header(cprop_version=1), "cprop_version"),
    ("layer_sizes-string", _header(layer_sizes="3,4,2"), "layer_sizes"),
    ("layer_sizes-short", _header(layer_sizes=[3]), "layer_sizes"),
    ("layer_sizes-float", _header(layer_sizes=[3, 4.0, 2]), r"layer_sizes'\[1\]"),
    ("layer_sizes-bool", _header(layer_sizes=[3, True, 2]), r"layer_sizes'\[1\]"),
    ("layer_sizes-zero", _header(layer_sizes=[3, 0, 2]), r"layer_sizes'\[1\]"),
    ("layer_sizes-other", _header(layer_sizes=[3, 5, 2]), "n_params"),
    ("layer_sizes-huge", _header(layer_sizes=[3, 10**12, 2], n_params=6 * 10**12 + 2),
     "'params' is .* bytes|'params' has shape"),
    ("n_params", _header(n_params=7), "n_params"),
    ("n_params-string", _header(n_params="26"), "n_params"),
    ("hidden-unknown", _header(hidden="swish"), "'hidden' is 'swish'"),
    ("hidden-type", _header(hidden=5), "'hidden' must be a string"),
    ("output-unknown", _header(output="relu"), "'output' is 'relu'"),
    ("loss-unknown", _header(loss="hinge"), "'loss' is 'hinge'"),
    ("loss-output-mismatch", _header(loss="cross_entropy"), "cannot build.*softmax"),
    ("dtype-unknown", _header(dtype="float16"), "'dtype' is 'float16'"),
    ("dtype-type", _header(dtype=64), "'dtype' must be a string"),
    ("train_biases-type", _header(train_biases="yes"), "train_biases"),
    ("train_biases-int", _header(train_biases=1), "train_biases"),
    ("negative_slope-type", _header(negative_slope="0.01"), "negative_slope"),
    ("negative_slope-negative", _header(negative_slope=-1.0), "negative_slope"),
    ("seed-negative", _header(seed=-1), "'seed'"),
    ("seed-too-big", _header(seed=2**64), "'seed'"),
    ("seed-float", _header(seed=5.0), "'seed'"),
    ("seed-string", _header(seed="5"), "'seed'"),
    ("init-unknown", _header(init="magic"), "'init' is 'magic'"),
    ("optimizer-type", _header(optimizer="adam"), "'optimizer' must be an object"),
    ("optimizer-missing-key", _optimizer(eps=_DELETE), "missing 'eps'"),
    ("optimizer-extra-key", _optimizer(lr=0.1), "unknown 'lr'"),
    ("optimizer-name", _optimizer(name="lbfgs"), "'optimizer.name' is 'lbfgs'"),
    ("optimizer-nesterov-type", _optimizer(nesterov=0), "nesterov"),
    ("optimizer-momentum-type", _optimizer(momentum="0"), "optimizer.momentum"),
    ("optimizer-eps-zero", _optimizer(eps=0.0), "eps"),
    ("optimizer-beta-range", _optimizer(beta1=1.5), "beta1"),
    ("optimizer-inconsistent", _optimizer(momentum=0.9), "momentum"),
    ("optimizer-slots", _optimizer(name="sgd"), r"'optimizer_state' has shape .*\(0,\)"),
    ("params-short", _set("params", lambda a: a[:-1]),
     r"'params' has shape \(25,\); expected \(26,\)"),
    ("params-long", _set("params", lambda a: np.append(a, 0.0)), "'params' has shape"),
    ("params-2d", _set("params", lambda a: a.reshape(2, 13)), "'params' has shape"),
    ("params-float32", _set("params", lambda a: a.astype(np.float32)),
     "'params' has dtype float32; expected float64"),
    ("params-int", _set("params", lambda a: a.astype(np.int64)), "'params' has dtype int64"),
    ("params-complex", _set("params", lambda a: a.astype(np.complex128)), "'params' has dtype"),
    ("params-structured", _set("params", lambda a: np.zeros(26, dtype=[("x", "<f8")])),
     "'params' has dtype"),
    ("params-nan", _nan_at("params", np.nan), "'params' contains NaN"),
    ("params-inf", _nan_at("params", -np.inf), "'params' contains NaN or infinity"),
    ("state-nan", _nan_at("optimizer_state", np.nan), "'optimizer_state' contains NaN"),
    ("state-short", _set("optimizer_state", lambda a: a[:26]), "'optimizer_state' has shape"),
    ("state-dtype", _set("optimizer_state", lambda a: a.astype(np.float32)),
     "'optimizer_state' has dtype"),
    ("state-negative-v", _nan_at("optimizer_state", -1.0), "negative Adam second moment"),
    ("steps-dtype", _set("optimizer_steps", lambda a: a.astype(np.uint64)),
     "'optimizer_steps' has dtype uint64; expected int64"),
    ("steps-float", _set("optimizer_steps", lambda a: a.astype(np.float64)),
     "'optimizer_steps' has dtype"),
    ("steps-shape", _set("optimizer_steps", lambda a: np.zeros(2, np.int64)),
     "'optimizer_steps' has shape"),
    ("steps-scalar", _set("optimizer_steps", lambda a: np.int64(3)),
     "'optimizer_steps' has shape"),
    ("steps-negative", _set("optimizer_steps", lambda a: -a), "'optimizer_steps' is negative"),
    ("rng-dtype", _set("rng_state", lambda a: a.astype(np.int64)),
     "'rng_state' has dtype int64; expected uint64"),
    ("rng-shape", _set("rng_state", lambda a: np.zeros(2, np.uint64)), "'rng_state' has shape"),
]


@pytest.mark.parametrize("mutate,pattern", [b[1:] for b in BAD_PARTS],
                         ids=[b[0] for b in BAD_PARTS])
def test_bad_contents_raise_value_error(tmp_path, saved, mutate, pattern):
    net, path = saved
    assert net.n_params == 26 and net.optimizer.name == "adam"
    parts = read_parts(path)
    mutate(parts)
    bad = tmp_path / "bad.npz"
    write_parts(bad, parts)
    refuses(bad, pattern)


def test_rprop_negative_step_size(tmp_path):
    net = trained(optimizer="rprop")
    path = tmp_path / "r.npz"
    net.save(path)
    parts = read_parts(path)
    parts["optimizer_state"][-1] = -0.5
    write_parts(path, parts)
    refuses(path, "negative Rprop step size")


def test_version_message_names_both_versions(tmp_path, saved):
    _, path = saved
    parts = read_parts(path)
    h = header_of(parts)
    h["version"] = 7
    h["new_field_of_version_7"] = {"whatever": []}
    parts["header"] = header_array(h)
    write_parts(path, parts)
    msg = refuses(path)
    assert "version 7" in msg and "version 1" in msg


def test_other_byte_order_is_read(tmp_path, saved):
    net, path = saved
    parts = read_parts(path)
    for name in ("params", "optimizer_state", "optimizer_steps", "rng_state"):
        parts[name] = parts[name].astype(parts[name].dtype.newbyteorder("S"))
    write_parts(path, parts)
    assert_same(net, cprop.load(path))


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def test_bad_archive_structure(tmp_path, saved):
    _, path = saved
    members = _members(path)
    bad = tmp_path / "bad.npz"

    # the same member twice
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(bad, members + [members[1]])
    refuses(bad, "more than once")

    # a member that is not a .npy
    write_zip(bad, [(n, b"plain text" if n == "params.npy" else d) for n, d in members])
    refuses(bad, "'params' is not a .npy")

    # a member in a directory
    write_zip(bad, [("sub/" + n if n == "rng_state.npy" else n, d) for n, d in members])
    refuses(bad, "missing 'rng_state'")

    # a .npy header claiming far more data than there is (no huge allocation)
    params = np.zeros(26)
    forged = npy_bytes(params, {"descr": "<f8", "fortran_order": False, "shape": (10**15,)})
    write_zip(bad, [(n, forged if n == "params.npy" else d) for n, d in members])
    refuses(bad, r"'params' has shape \(1000000000000000,\)")

    # a .npy header with the right shape but missing or extra data bytes
    for raw in (params[:-1], np.zeros(27)):
        forged = npy_bytes(raw, {"descr": "<f8", "fortran_order": False, "shape": (26,)})
        write_zip(bad, [(n, forged if n == "params.npy" else d) for n, d in members])
        refuses(bad, "'params' holds .* bytes of data")

    # a .npy header that is not a dict literal / uses an unsupported .npy version
    forged = b"\x93NUMPY\x01\x00" + struct.pack("<H", 6) + b"hello\n"
    write_zip(bad, [(n, forged if n == "params.npy" else d) for n, d in members])
    refuses(bad, "'params' has a corrupt .npy header")
    forged = b"\x93NUMPY\x09\x00" + b"\x00" * 60
    write_zip(bad, [(n, forged if n == "params.npy" else d) for n, d in members])
    refuses(bad, "'params' (is not a .npy|uses .npy format version)")

    # members flagged as encrypted (bit 0 of the flags in every central directory entry)
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")
    assert pos > 0
    while pos >= 0:
        data[pos + 8] |= 1
        pos = data.find(b"PK\x01\x02", pos + 4)
    bad.write_bytes(bytes(data))
    refuses(bad, "encrypted")

    # a compressed archive of the right arrays loads (cprop writes uncompressed ones)
    write_zip(bad, members, compression=zipfile.ZIP_DEFLATED)
    assert_same(cprop.load(path), cprop.load(bad))


# -- saving -------------------------------------------------------------------------------------

def test_save_refuses_non_finite(tmp_path):
    net = trained()
    net.params[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.save(tmp_path / "nan.npz")
    net.params[3] = 0.0
    net._opt_state[5] = np.inf
    with pytest.raises(ValueError, match="reset_optimizer"):
        net.save(tmp_path / "inf.npz")
    assert os.listdir(tmp_path) == []
    net.reset_optimizer()
    net.save(tmp_path / "ok.npz")
    assert_same(net, cprop.load(tmp_path / "ok.npz"))


@pytest.mark.parametrize("existing", [False, True])
def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch, existing):
    net = trained()
    path = tmp_path / "model.npz"
    if existing:
        old = cprop.MLP([2, 2], seed=1)
        old.save(path)
        old_bytes = path.read_bytes()

    real_savez = np.savez

    def savez_then_fail(file, *args, **kwds):
        file.write(b"PK\x03\x04 half an archive")
        file.flush()
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        net.save(path)
    with pytest.raises(RuntimeError, match="disk on fire"):
        net.save(tmp_path / "new_name")
    monkeypatch.setattr(np, "savez", real_savez)

    if existing:
        assert os.listdir(tmp_path) == ["model.npz"]
        assert path.read_bytes() == old_bytes
        assert_same(old, cprop.load(path))
    else:
        assert os.listdir(tmp_path) == []
    net.save(path)  # and a later save works and leaves nothing else behind
    assert os.listdir(tmp_path) == ["model.npz"]
    assert_same(net, cprop.load(path))


def test_save_errors_from_the_file_system(tmp_path):
    net = trained()
    with pytest.raises(FileNotFoundError):
        net.save(tmp_path / "no" / "such" / "dir.npz")
    (tmp_path / "adir").mkdir()
    with pytest.raises(OSError):
        net.save(tmp_path / "adir")
    assert sorted(os.listdir(tmp_path)) == ["adir"]
    assert os.listdir(tmp_path / "adir") == []


def test_save_errors_name_the_users_path_not_a_temporary_file(tmp_path, monkeypatch):
    net = trained()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        net.save("missing_dir/x.npz")
    text = str(info.value)
    assert info.value.filename == "missing_dir/x.npz" and "missing_dir/x.npz" in text
    assert "does not exist" in text and ".tmp" not in text and "cprop-save" not in text
    (tmp_path / "adir").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        net.save("adir")
    assert info.value.filename == "adir" and ".tmp" not in str(info.value)

    # any other failure while writing (a full disk, no permission ...) names the path too
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / ".cprop-save-1234.tmp"))

    monkeypatch.setattr(cprop._fileformat, "_create_temp", no_space)
    with pytest.raises(OSError) as info:
        net.save("model.npz")
    assert info.value.errno == 28 and info.value.filename == "model.npz"
    assert "No space left on device" in str(info.value) and ".tmp" not in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["adir"]


def test_saved_file_has_ordinary_permissions(tmp_path):
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    net = trained()
    net.save(tmp_path / "m.npz")
    mode = lambda p: os.stat(p).st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "m.npz") == mode(reference)
    os.chmod(tmp_path / "m.npz", 0o600)
    net.save(tmp_path / "m.npz")  # overwriting keeps the file's permissions
    assert mode(tmp_path / "m.npz") == 0o600


def test_pathlike_objects(tmp_path):
    class P:
        def __init__(self, p):
            self.p = p

        def __fspath__(self):
            return self.p

    net = trained()
    target = P(str(tmp_path / "custom"))
    net.save(target)
    assert_same(net, cprop.load(target))
    assert_same(net, cprop.load(pathlib.Path(tmp_path) / "custom"))
