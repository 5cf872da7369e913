"""CSV files as people have them: other delimiters (sniffed, or --delimiter), no header, a
pandas index column, a text column among the inputs."""

from __future__ import annotations

import numpy as np
import pytest

import cprop
from cprop._csv import read_table, sniff_delimiter
from cprop.cli import main
from cli_helpers import run



_rng = np.random.default_rng(7)
X = _rng.normal(size=(60, 3)).round(6)
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def text(delimiter=",", header=("a", "b", "c", "y"), index=False):
    lines = []
    if header is not None:
        lines.append(delimiter.join((("",) if index else ()) + tuple(header)))
    for k, (x, y) in enumerate(zip(X.tolist(), Y)):
        lines.append(delimiter.join(([str(k)] if index else []) + [repr(v) for v in x]
                                    + [str(y)]))
    return "\n".join(lines) + "\n"


def train(capsys, tmp_path, path, *options):
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", path, "--target", "y", "--epochs", "3", "--seed", "4",
                         "--save", model, *options)
    return code, err, (cprop.load(model) if code == 0 else None)


@pytest.mark.parametrize("delimiter,name", [(",", None), (";", "semicolon"), ("\t", "tab"),
                                            ("|", "'|'")])
def test_delimiters_are_sniffed(tmp_path, capsys, delimiter, name):
    path = tmp_path / "d.csv"
    path.write_text(text(delimiter))
    code, err, net = train(capsys, tmp_path, path)
    assert code == 0, err
    assert net.dataset["features"] == ["a", "b", "c"]
    first = err.splitlines()[0]
    if name is None:
        assert f"{path}: 60 rows" in first  # a comma is not worth a word
    else:
        assert f"{path} ({name}-separated, sniffed): 60 rows" in first
    # the same model as from the comma-separated file
    comma = tmp_path / "comma.csv"
    comma.write_text(text(","))
    assert main(["train", str(comma), "--target", "y", "--epochs", "3", "--seed", "4", "--save",
                 str(tmp_path / "c.npz")]) == 0
    assert np.array_equal(cprop.load(tmp_path / "c.npz").params, net.params)
    # predict and evaluate read the file the same way
    code, out, err = run(capsys, "predict", tmp_path / "m.npz", path)
    assert code == 0, err
    assert out.count("\n") == 61


def test_delimiter_option_and_its_names(tmp_path, capsys):
    path = tmp_path / "d.tsv"
    path.write_text(text("\t"))
    for spelling in ("\t", "\\t", "tab", "TAB"):
        code, err, net = train(capsys, tmp_path, path, "--delimiter", spelling)
        assert code == 0, err
        assert "(tab-separated): 60 rows" in err  # given, not sniffed
    # a wrong one: the header is one column, and the message says what to do
    code, err, _ = train(capsys, tmp_path, path, "--delimiter", ";")
    assert code == 2
    assert "has no column 'y'" in err and "--delimiter sets another" in err


def test_sniffing_rules():
    assert sniff_delimiter("a;b;c\n1,5;2,5;x\n3,5;4;y\n") == ";"  # decimal commas
    assert sniff_delimiter('a,b,note\n1,2,"x;y;z"\n3,4,"p;q"\n') == ","
    assert sniff_delimiter("y\n1\n2\n") is None  # one column: cannot tell (a comma is used)
    # ragged rows: Sniffer cannot tell; the header decides
    assert sniff_delimiter("a,b,c\n1,2\n3,4,5\n") == ","
    assert sniff_delimiter("\na;b;c\n1;2\n3;4;5\n") == ";"
    assert sniff_delimiter("a b\n1;2\n3\n") is None
    # only the first 8 KB, cut at a line end, are looked at
    long = "a;b\n" + "1;2\n" * 10000
    assert sniff_delimiter(long) == ";"


def test_field_count_errors_say_which_delimiter(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("a;b;y\n1;2;0\n3;4\n")
    code, err, _ = train(capsys, tmp_path, path)
    assert code == 2
    assert err == (f"cprop train: error: {path}:3: expected 3 fields as in the header, got 2 "
                   "(fields separated by semicolon, sniffed; --delimiter sets another)\n")


def test_a_file_without_header_is_refused_with_a_hint(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text(text(",", header=None))
    code, err, _ = train(capsys, tmp_path, path)
    assert code == 2
    assert err == (f"cprop train: error: {path}:1: the first row holds only numbers: the file "
                   "has no header row. cprop finds columns by name; add a first line naming "
                   "the columns (such as 'x1,x2,x3,y') and give the target by its name\n")
    path.write_text(text(";", header=None))
    code, err, _ = train(capsys, tmp_path, path)
    assert code == 2 and "(such as 'x1;x2;x3;y')" in err  # in the file's own delimiter


def test_a_pandas_index_column_is_left_out(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=Y)
    path = tmp_path / "pandas.csv"
    df.to_csv(path)  # index=True: an unnamed first column 0, 1, 2, ...
    assert path.read_text().startswith(",a,b,c,y\n")
    code, err, net = train(capsys, tmp_path, path)
    assert code == 0, err
    assert "its unnamed first column (a pandas index) is not used" in err.splitlines()[0]
    assert net.dataset["features"] == ["a", "b", "c"] and net.layer_sizes[0] == 3
    plain = tmp_path / "plain.csv"
    df.to_csv(plain, index=False)
    assert main(["train", str(plain), "--target", "y", "--epochs", "3", "--seed", "4",
                 "--save", str(tmp_path / "p.npz")]) == 0
    assert np.array_equal(cprop.load(tmp_path / "p.npz").params, net.params)
    # predict on the pandas file: same predictions; --target by index counts without it
    code, out_pandas, _ = run(capsys, "predict", tmp_path / "m.npz", path)
    code2, out_plain, _ = run(capsys, "predict", tmp_path / "m.npz", plain)
    assert code == code2 == 0 and out_pandas == out_plain
    code, err, _ = train(capsys, tmp_path, path, "--target", "-1")
    assert code == 0
    # errors still give the column's place in the file (the index is column 1)
    df["b"] = df["b"].astype(object)
    df.loc[5, "b"] = "oops"
    df.to_csv(path)
    code, err, _ = train(capsys, tmp_path, path)
    assert code == 2 and f"{path}:7:3: expected a number in column 'b', got 'oops'" in err


def test_only_a_first_empty_name_is_an_index(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("a,,y\n1,2,0\n2,3,1\n")
    code, err, _ = train(capsys, tmp_path, path)
    assert code == 2 and f"{path}:1:2: empty column name" in err
    path.write_text(",,y\n1,2,0\n2,3,1\n")
    code, err, _ = train(capsys, tmp_path, path)
    assert code == 2 and f"{path}:1:1: empty column name" in err


def test_a_text_column_says_ignore_or_categorical(tmp_path, capsys):
    colors = np.array(["red", "green", "blue"])[np.arange(60) % 3]
    path = tmp_path / "d.csv"
    rows = [f"{x[0]!r};{c};{x[1]!r};{y}" for x, c, y in zip(X.tolist(), colors, Y)]
    path.write_text("a;colour;b;y\n" + "\n".join(rows) + "\n")
    code, err, _ = train(capsys, tmp_path, path)
    assert code == 2
    assert err == (f"cprop train: error: {path}:2:2: column 'colour' holds text ('red' and 59 "
                   "more), not numbers; use --ignore colour or --categorical colour\n")
    for option in ("--ignore", "--categorical"):
        code, err, net = train(capsys, tmp_path, path, option, "colour")
        assert code == 0, err
    # a name a shell must quote is quoted; one holding a comma is given by its index
    path.write_text("a;my colour;b;y\n" + "\n".join(rows) + "\n")
    code, err, _ = train(capsys, tmp_path, path)
    assert "use --ignore 'my colour' or --categorical 'my colour'" in err
    path.write_text('a;"colour, rgb";b;y\n' + "\n".join(rows) + "\n")
    code, err, _ = train(capsys, tmp_path, path)
    assert "use --ignore 1 or --categorical 1" in err
    code, err, _ = train(capsys, tmp_path, path, "--categorical", "1")
    assert code == 0, err


def test_a_typo_in_a_number_column_is_a_cell_error(tmp_path, capsys):
    path = tmp_path / "d.csv"
    rows = [f"{x[0]!r},{x[1]!r},{y}" for x, y in zip(X.tolist(), Y)]
    rows[9] = "1.5,oops,0"
    path.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    code, err, _ = train(capsys, tmp_path, path)
    assert err == (f"cprop train: error: {path}:11:2: expected a number in column 'b', got "
                   "'oops'\n")
    rows[9] = "1.5;2,5;0"
    path.write_text("a;b;y\n" + "\n".join(r.replace(",", ";") if "2,5" not in r else r
                                          for r in rows) + "\n")
    code, err, _ = train(capsys, tmp_path, path)
    assert code == 2 and "got '2,5' (a decimal comma?" in err


def test_read_table_keeps_positions(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(",a,b\n0,1,2\n1,3,4\n")
    t = read_table(path)
    assert t.header == ["a", "b"] and t.rows == [["1", "2"], ["3", "4"]]
    assert t.index_column and t.field(0) == 2 and t.delimiter == "," and t.sniffed
    t = read_table(path, delimiter=",")
    assert t.index_column and not t.sniffed
