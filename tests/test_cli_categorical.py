"""`cprop train --categorical`: one-hot encoding of text columns, kept in the model file and
the ONNX file, applied by `predict` and `evaluate` to raw CSV rows, while `forward` and the
ONNX graph take the encoded matrix."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import cprop
from cprop import _tabular
from cli_helpers import run



_rng = np.random.default_rng(11)
N = 300
AREA = _rng.uniform(30, 200, N).round(1)
ROOMS = _rng.integers(1, 7, N)
DISTRICT = _rng.choice(["Altstadt", "Hafen", "Nord", "Süd"], N)
_BONUS = {"Altstadt": 25.0, "Hafen": 18.0, "Nord": 12.0, "Süd": 15.0}
PRICE = (AREA * np.array([_BONUS[d] for d in DISTRICT]) + 80 * ROOMS
         + _rng.normal(0, 50, N)).round(1)
KIND = np.where(PRICE > np.median(PRICE), "dear", "cheap")
CATEGORIES = ["Altstadt", "Hafen", "Nord", "Süd"]


def encoded(rows=slice(None)):
    """The matrix the network takes: area, district one-hot (sorted), rooms."""
    onehot = (DISTRICT[rows, None] == np.array(CATEGORIES)).astype(float)
    return np.column_stack([AREA[rows], onehot, ROOMS[rows]])


def write(path, rows=slice(None), target="price", delimiter=";"):
    values = {"price": PRICE, "kind": KIND}[target]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        w.writerow(["area", "district", "rooms", target])
        for a, d, r, v in zip(AREA[rows], DISTRICT[rows], ROOMS[rows], values[rows]):
            w.writerow([a, d, r, v])
    return str(path)


@pytest.fixture
def homes(tmp_path, capsys):
    data = write(tmp_path / "homes.csv")
    model = tmp_path / "homes.npz"
    code, out, err = run(capsys, "train", data, "--target", "price", "--categorical",
                         "district", "--layers", "16", "--epochs", "60", "--seed", "1",
                         "--save", model)
    assert code == 0, err
    return data, model, err


def test_train_encodes_and_keeps_the_categories(homes):
    data, model, err = homes
    assert ("3 input columns (1 categorical, one-hot encoded: 'district': 4 categories; "
            "6 network inputs)") in err
    net = cprop.load(model)
    assert net.layer_sizes == [6, 16, 1]
    assert net.dataset == {"features": ["area", "district", "rooms"], "target": "price",
                           "task": "regress", "classes": None,
                           "categories": {"district": CATEGORIES}}
    assert _tabular.encoded_names(net.dataset["features"], net.dataset["categories"]) == [
        "area", "district=Altstadt", "district=Hafen", "district=Nord", "district=Süd", "rooms"]
    y = net.forward(encoded())[:, 0]  # the network takes the encoded matrix, raw units
    r2 = 1 - np.sum((PRICE - y) ** 2) / np.sum((PRICE - PRICE.mean()) ** 2)
    assert r2 > 0.95  # the district matters: without it the fit is far worse


def test_predict_and_evaluate_encode_raw_rows(tmp_path, capsys, homes):
    data, model, _ = homes
    net = cprop.load(model)
    code, out, err = run(capsys, "predict", model, data, "--keep", "district")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["district", "price"]
    assert [r[0] for r in rows[1:]] == DISTRICT.tolist()
    np.testing.assert_array_equal([float(r[1]) for r in rows[1:]], net.forward(encoded())[:, 0])
    # columns in another order, extra columns, a comma file: found by name
    other = tmp_path / "other.csv"
    with open(other, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["rooms", "id", "district", "area"])
        for k in range(20):
            w.writerow([ROOMS[k], f"h{k}", f" {DISTRICT[k]} ", AREA[k]])  # spaces are stripped
    code, out2, _ = run(capsys, "predict", model, other)
    assert code == 0 and out2.splitlines()[0] == "price"
    np.testing.assert_array_equal([float(v) for v in out2.splitlines()[1:]],
                                  net.forward(encoded(slice(0, 20)))[:, 0])
    code, out, _ = run(capsys, "evaluate", model, data, "--json")
    assert code == 0 and json.loads(out)["r2"] > 0.95


def test_an_unknown_category_is_an_input_error(tmp_path, capsys, homes):
    _, model, _ = homes
    bad = tmp_path / "bad.csv"
    bad.write_text("area;district;rooms\n50;Nord;2\n60;Mitte;3\n70;;1\n", encoding="utf-8")
    for command in ("predict", "evaluate"):
        code, out, err = run(capsys, command, model, bad)
        assert code == 2 and out == ""
        if command == "predict":
            assert err == (f"cprop predict: error: {bad}:3:2: 'Mitte' is not one of the "
                           "categories the model knows in the categorical column 'district' "
                           "(it knows 'Altstadt', 'Hafen', 'Nord', 'Süd')\n")
        else:  # evaluate needs the target first
            assert "no column 'price' (the model's target)" in err
    bad.write_text("area;district;rooms\n50;Nord;2\n70;;1\n", encoding="utf-8")
    code, _, err = run(capsys, "predict", model, bad)
    assert code == 2 and f"{bad}:3:2: missing value (an empty field) in the categorical" in err


def test_train_refuses_empty_and_long_categories(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("a,c,y\n1,x,0\n2,,1\n3,y,1\n")
    code, _, err = run(capsys, "train", path, "--target", "y", "--categorical", "c")
    assert code == 2
    assert err == (f"cprop train: error: {path}:3:2: missing value in the categorical column "
                   "'c' (an empty field)\n")
    path.write_text("a,c,y\n1,x,0\n2," + "z" * 1025 + ",1\n3,y,1\n")
    code, _, err = run(capsys, "train", path, "--target", "y", "--categorical", "c",
                       "--save", tmp_path / "m.npz")
    assert code == 2 and "is 1025 characters long; at most 1024" in err
    assert not (tmp_path / "m.npz").exists()


def test_a_numeric_column_can_be_categorical(tmp_path, capsys):
    path = write(tmp_path / "h.csv", target="kind")
    code, _, err = run(capsys, "train", path, "--target", "kind", "--categorical",
                       "rooms,district", "--epochs", "5", "--seed", "0", "--save",
                       tmp_path / "m.npz")
    assert code == 0, err
    net = cprop.load(tmp_path / "m.npz")
    assert net.dataset["categories"] == {"district": CATEGORIES,
                                         "rooms": ["1", "2", "3", "4", "5", "6"]}
    assert net.layer_sizes[0] == 1 + 4 + 6 and net.dataset["classes"] == ["cheap", "dear"]


def test_onnx_file_carries_the_categories_and_takes_the_encoded_matrix(tmp_path, capsys,
                                                                         homes):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    _, model, _ = homes
    path = tmp_path / "homes.onnx"
    code, _, err = run(capsys, "export", model, path)
    assert code == 0
    assert err == (f"cprop export: wrote {path} (ONNX opset 13, float64; input 'input' "
                   "(batch, 6), output 'output' (batch, 1))\n  the input holds the columns "
                   "with district one-hot encoded, as net.forward takes them; the categories "
                   "are in the model's metadata 'cprop.dataset'\n")
    m = onnx.load(str(path))
    meta = {p.key: p.value for p in m.metadata_props}
    dataset = json.loads(meta["cprop.dataset"])
    assert dataset["categories"] == {"district": CATEGORIES}
    assert "district=Hafen" in m.doc_string
    net = cprop.load(model)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = session.run(None, {"input": encoded()})[0]
    np.testing.assert_allclose(y, net.forward(encoded()), rtol=1e-12, atol=1e-9)


BAD = [
    ({"categories": {}}, "'dataset.categories' must be an object naming at least one"),
    ({"categories": []}, "'dataset.categories' must be an object"),
    ({"categories": {"zz": ["a"]}}, "names 'zz', which is not one of 'dataset.features'"),
    ({"categories": {"b": []}}, "must be a non-empty list of strings"),
    ({"categories": {"b": "xy"}}, "must be a non-empty list of strings"),
    ({"categories": {"b": ["x", "x"]}}, "names 'x' more than once"),
    ({"categories": {"b": ["x", ""]}}, "non-empty string"),
    ({"categories": {"b": ["x", 1]}}, "non-empty string"),
    ({"categories": {"b": ["w", "x", "y", "z"]}},
     "describes 5 encoded inputs, but the network has 4"),
    ({"features": ["a", 3], "categories": {"a": ["x", "y", "z"]}},
     "'dataset.features' must be a list of strings"),
]


@pytest.mark.parametrize("change,pattern", BAD, ids=[p for _, p in BAD])
def test_hostile_categories_are_refused(tmp_path, change, pattern):
    good = {"features": ["a", "b"], "target": "t", "task": "regress", "classes": None,
            "categories": {"b": ["x", "y", "z"]}}
    net = cprop.MLP([4, 3, 1], output="identity", seed=0)
    net.dataset = good
    net.save(tmp_path / "ok.npz")
    assert cprop.load(tmp_path / "ok.npz").dataset == good
    net2 = cprop.MLP([4, 3, 1], output="identity", seed=0)
    net2.dataset = {**good, **change}
    with pytest.raises(ValueError, match="save: net.dataset is not valid"):
        net2.save(tmp_path / "bad.npz")
    with np.load(tmp_path / "ok.npz") as z:
        parts = {k: z[k] for k in z.files}
    header = json.loads(parts["header"].tobytes())
    header["dataset"].update(change)
    parts["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(tmp_path / "bad.npz", "wb") as f:
        np.savez(f, **parts)
    with pytest.raises(ValueError, match=pattern):
        cprop.load(tmp_path / "bad.npz")


def test_files_without_categories_are_written_as_before(tmp_path):
    net = cprop.MLP([2, 3, 1], output="identity", seed=0)
    net.dataset = {"features": ["a", "b"], "target": "t", "task": "regress", "classes": None}
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as z:
        header = json.loads(z["header"].tobytes())
    assert list(header["dataset"]) == ["features", "target", "task", "classes"]
    assert cprop.load(tmp_path / "m.npz").dataset == net.dataset
