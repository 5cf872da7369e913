"""ONNX export (`net.to_onnx`, `cprop export`): onnxruntime computes what `net.forward` does.

Every hidden x output activation pair, no-hidden to two-hidden-layer networks, both dtypes,
random leaky_relu slopes; outputs compared at <= 1e-6 (float32: relative to the outputs'
magnitude, at most 1e-6 absolute when they are <= 1) and <= 1e-12 in float64.
"""

from __future__ import annotations

import itertools
import json
import os
import sys

import numpy as np
import pytest

import cprop
from cprop.activations import HIDDEN, OUTPUT
from cprop.cli import main

# Test dependencies (the test extra): imported unconditionally, never skipped.
import onnx
import onnxruntime as ort

TOL = {"float64": 1e-12, "float32": 1e-6}


def run_onnx(path, X):
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X})[0]


def max_diff(y, f):
    """max |y - f| / max(1, max |f|): absolute for outputs <= 1, relative above."""
    return float(np.abs(y.astype(np.float64) - f).max() / max(1.0, float(np.abs(f).max())))


CASES = [(h, o, dt) for h, o in itertools.product(HIDDEN, OUTPUT)
         for dt in ("float64", "float32")]


@pytest.mark.parametrize("hidden,output,dtype", CASES, ids=["-".join(c) for c in CASES])
def test_every_activation_pair_matches_forward(tmp_path, hidden, output, dtype):
    rng = np.random.default_rng(CASES.index((hidden, output, dtype)))
    worst = 0.0
    for depth in (0, 1, 2):
        sizes = [int(rng.integers(1, 9))] + [int(rng.integers(1, 17)) for _ in range(depth)]
        sizes.append(int(rng.integers(2 if output == "softmax" else 1, 6)))
        net = cprop.MLP(sizes, hidden=hidden, output=output, dtype=dtype,
                        seed=int(rng.integers(2**63)),
                        negative_slope=float(rng.choice([0.0, 0.01, 0.3, 1.5])))
        net.params[:] += rng.normal(0, 0.3, net.n_params)  # biases away from 0 too
        path = tmp_path / f"net{depth}.onnx"
        net.to_onnx(path)
        model = onnx.load(os.fspath(path))
        onnx.checker.check_model(model, full_check=True)
        want = onnx.TensorProto.FLOAT if dtype == "float32" else onnx.TensorProto.DOUBLE
        (inp,), (out,) = model.graph.input, model.graph.output
        assert (inp.name, out.name) == ("input", "output")
        assert inp.type.tensor_type.elem_type == want == out.type.tensor_type.elem_type
        dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
        assert dims == ["batch", sizes[0]]
        assert [o.version for o in model.opset_import] == [13]
        for n in (1, 37):  # the batch dimension is dynamic
            X = rng.uniform(-2, 2, (n, sizes[0])).astype(dtype)
            y = run_onnx(path, X)
            assert y.dtype == np.dtype(dtype) and y.shape == (n, sizes[-1])
            worst = max(worst, max_diff(y, net.forward(X)))
    assert worst <= TOL[dtype], worst


def test_leaky_relu_negative_side_and_slope(tmp_path):
    # Known weights: z = x, so the graph must give exactly slope * x for x < 0.
    for dtype in ("float64", "float32"):
        net = cprop.MLP([1, 1, 1], hidden="leaky_relu", output="identity", dtype=dtype,
                        negative_slope=0.25, init=[([[1.0]], [0.0]), ([[1.0]], [0.0])])
        net.to_onnx(tmp_path / "l.onnx")
        X = np.array([[-4.0], [-0.5], [0.0], [3.0]], dtype=dtype)
        y = run_onnx(tmp_path / "l.onnx", X)
        np.testing.assert_array_equal(y[:, 0], np.array([-1.0, -0.125, 0.0, 3.0], dtype))
        np.testing.assert_array_equal(y, net.forward(X))


def test_seed_example_exports_exactly(tmp_path):
    net, x, t, lr = cprop.examples.seed_network()
    net.to_onnx(tmp_path / "seed.onnx")
    y = run_onnx(tmp_path / "seed.onnx", np.array([x]))
    assert y.tolist()[0] == pytest.approx([0.76778, 0.78301], abs=1e-5)  # σ(1.19583), ŷ2
    assert np.abs(y[0] - net.forward(x)).max() <= 1e-15


def test_parameters_are_stored_bit_for_bit(tmp_path):
    net = cprop.MLP([3, 4, 2], hidden="tanh", seed=3, dtype="float32")
    net.to_onnx(tmp_path / "p.onnx")
    model = onnx.load(os.fspath(tmp_path / "p.onnx"))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    for l in range(2):
        assert inits[f"W{l}"].dtype == np.float32
        np.testing.assert_array_equal(inits[f"W{l}"], net.weights[l])
        np.testing.assert_array_equal(inits[f"b{l}"], net.biases[l])
    assert model.producer_name == "cprop" and "MLP([3, 4, 2]" in model.doc_string


def test_failed_export_writes_nothing(tmp_path, monkeypatch):
    net = cprop.MLP([2, 3, 1], seed=0)
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    net.params[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.to_onnx(target)
    assert target.read_bytes() == b"old"
    net.params[0] = 0.5
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.to_onnx(tmp_path / "missing" / "m.onnx")
    with pytest.raises(ValueError, match="is a directory"):
        net.to_onnx(tmp_path)

    def fail(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        net.to_onnx(target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary file left


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(ImportError, match=r'pip install "cprop\[onnx\]"'):
        cprop.MLP([2, 2], seed=0).to_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


# -- cprop export, on a model from cprop train ------------------------------------------------

def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cprop_export_of_a_trained_model(tmp_path, capsys, dtype):
    rng = np.random.default_rng(7)
    # Columns of different scales and offsets, so the folded scaling matters. In float32 the
    # offsets stay small: a folded first layer computes x @ W' + b' with b' ~ -offset * W', and
    # float32 rounding of those cancelling terms differs between runtimes by ~1e-7 of their size.
    scale, offset = ([1.0, 50.0, 0.01], [0.0, 300.0, -2.0]) if dtype == "float64" else (
        [1.0, 5.0, 0.1], [0.0, 3.0, -0.5])
    X = rng.normal(size=(120, 3)) * scale + offset
    labels = np.where(X[:, 0] + (X[:, 1] - offset[1]) / scale[1] > 0, "yes", "no")
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"],
              [[*map(repr, x), lab] for x, lab in zip(X.tolist(), labels)])
    assert main(["train", str(tmp_path / "d.csv"), "--target", "label", "--layers", "8",
                 "--epochs", "5", "--seed", "1", "--dtype", dtype,
                 "--save", str(tmp_path / "m.npz")]) == 0
    assert main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx")]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "m.onnx" in err
    net = cprop.load(tmp_path / "m.npz")
    y = run_onnx(tmp_path / "m.onnx", X.astype(dtype))
    assert max_diff(y, net.forward(X)) <= TOL[dtype]
    model = onnx.load(os.fspath(tmp_path / "m.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["cprop.dataset"]) == net.dataset
    assert net.dataset["classes"] == ["no", "yes"]
    assert "Input columns: a, b, c" in model.doc_string


def test_cprop_export_errors(tmp_path, capsys):
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    assert main(["export", str(tmp_path / "junk.npz"), str(tmp_path / "m.onnx")]) != 0
    out, err = capsys.readouterr()
    assert out == "" and "junk.npz" in err and "not a valid cprop model" in err
    assert not (tmp_path / "m.onnx").exists()
