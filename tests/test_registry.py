"""One registry of names (``cprop._registry``): every table that lists activations, losses,
optimizers, schedules, initialisers or dtypes is the registry's, and the kernels' code tables
name the same sets."""

from __future__ import annotations

import ast
import pathlib
import types

import pytest

import cprop
from cprop import _registry, activations, optimizers, oracle, schedules
from cprop._kernels import _mlp
from cprop.cli import _parser

SRC = pathlib.Path(cprop.__file__).parent


def test_public_names_are_aliases_of_the_registry():
    assert cprop.mlp.LOSSES is _registry.LOSSES
    assert cprop.mlp.INITS is _registry.INITS
    assert cprop.mlp._LOSS_OUTPUT is _registry.LOSS_OUTPUT
    assert activations.HIDDEN is _registry.HIDDEN and activations.OUTPUT is _registry.OUTPUT
    assert optimizers.OPTIMIZERS is _registry.OPTIMIZERS
    assert tuple(schedules._NAMED) == _registry.SCHEDULES
    for name in ("ACTIVATIONS", "HIDDEN", "OUTPUT", "LOSS_OUTPUT", "LOSSES", "INITS",
                 "OPTIMIZERS", "SCHEDULES", "DTYPES"):
        assert getattr(oracle, name) is getattr(_registry, name), name
    assert tuple(cprop._validation._SUPPORTED_DTYPES) == _registry.DTYPES
    # the order error messages list them in (names added later come last)
    assert _registry.LOSSES == ("squared_error", "cross_entropy", "binary_cross_entropy",
                                "poisson")
    assert _registry.HIDDEN == ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
    assert _registry.OUTPUT == ("sigmoid", "softmax", "identity", "exp")


def test_kernel_tables_name_the_registrys_sets():
    for table, names in _registry.KERNEL_TABLES.items():
        assert set(getattr(_mlp, table)) == set(names), table
    assert set(activations.ACTIVATION_CODES) == set(_registry.ACTIVATIONS)
    _registry.check_kernel_tables(_mlp)


def test_a_mismatched_build_is_refused_with_a_clear_import_error():
    fake = types.SimpleNamespace(__name__="fake._mlp", ACTIVATION_CODES=_mlp.ACTIVATION_CODES,
                                 LOSS_CODES={**_mlp.LOSS_CODES, "hinge": 9},
                                 OPTIMIZER_CODES={"sgd": 0, "adam": 1, "adamw": 3},
                                 INIT_CODES=_mlp.INIT_CODES)
    with pytest.raises(ImportError) as info:
        _registry.check_kernel_tables(fake)
    text = str(info.value)
    assert "'fake._mlp' does not match cprop._registry" in text and "rebuild" in text
    assert "LOSS_CODES: only the kernels know 'hinge'" in text
    assert "OPTIMIZER_CODES: only cprop._registry knows 'rprop'" in text
    del fake.INIT_CODES
    with pytest.raises(ImportError, match="INIT_CODES is missing"):
        _registry.check_kernel_tables(fake)


def _choices(parser, command, option):
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return tuple(next(a for a in sub._actions if option in a.option_strings).choices)


def test_cli_choices_come_from_the_registry():
    p = _parser()
    assert _choices(p, "explain", "--hidden") == _registry.HIDDEN
    assert _choices(p, "explain", "--output") == _registry.OUTPUT
    assert _choices(p, "explain", "--loss") == _registry.LOSSES
    assert _choices(p, "train", "--hidden") == _registry.HIDDEN
    assert _choices(p, "train", "--init") == _registry.INITS
    assert _choices(p, "train", "--dtype") == _registry.DTYPES
    assert _choices(p, "train", "--optimizer") == _registry.OPTIMIZERS
    assert _choices(p, "train", "--lr-schedule") == _registry.SCHEDULES


def test_estimator_constraints_come_from_the_registry():
    sk = pytest.importorskip("cprop.sklearn")
    c = sk.MLPClassifier._parameter_constraints
    assert c["activation"][0].options == set(_registry.SKLEARN_ACTIVATIONS)
    assert c["solver"][0].options == set(_registry.SKLEARN_SOLVERS)
    assert c["learning_rate"][0].options == set(_registry.SKLEARN_LEARNING_RATES)
    assert c["dtype"][0].options == set(_registry.DTYPES)
    assert sk.MLPRegressor._parameter_constraints["loss"][0].options == set(
        _registry.SKLEARN_REGRESSOR_LOSSES)
    assert sk._HIDDEN is _registry.SKLEARN_ACTIVATIONS


def test_registry_is_consistent_and_plain_python():
    for loss, out in _registry.LOSS_OUTPUT.items():
        assert out is None or out in _registry.OUTPUT
        assert _registry.LOSS_TARGETS[loss] in ("real", "unit", "distribution", "nonnegative")
    assert set(_registry.HIDDEN) | set(_registry.OUTPUT) == set(_registry.ACTIVATIONS)
    tree = ast.parse((SRC / "_registry.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"__future__"}


@pytest.mark.parametrize("loss, output", [("cross_entropy", "softmax"),
                                          ("binary_cross_entropy", "sigmoid")])
def test_target_kinds_drive_the_target_checks(loss, output):
    net = cprop.MLP([2, 2], output=output, loss=loss, seed=0)
    ref = oracle.MLP([2, 2], output=output, loss=loss, seed=0)
    with pytest.raises(ValueError, match=f"T: {loss} targets must lie in \\[0, 1\\]"):
        net.loss([[0.0, 0.0]], [[1.5, -0.5]])
    with pytest.raises(ValueError, match=f"T: {loss} targets must lie in \\[0, 1\\]"):
        ref.loss([[0.0, 0.0]], [[1.5, -0.5]])
    if _registry.LOSS_TARGETS[loss] == "distribution":  # class labels accepted
        assert net.loss([[0.0, 0.0]], [1]) == net.loss([[0.0, 0.0]], [[0.0, 1.0]])


def test_cli_trains_with_every_registered_optimizer(tmp_path, capsys):
    # The command line's --optimizer choices are the registry's; adamw (added later) trains end
    # to end, and the saved model holds its state.
    import numpy as np

    from cprop.cli import main

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,y\n" + "".join(f"{r[0]},{r[1]},{r[2]},{r.sum():.6f}\n" for r in X))
    for name in _registry.OPTIMIZERS:
        model = tmp_path / f"{name}.npz"
        code = main(["train", str(path), "--target", "y", "--optimizer", name, "--alpha", "0.01",
                     "--epochs", "3", "--lr", "0.01", "--save", str(model)])
        capsys.readouterr()
        assert code == 0, name
        net = cprop.load(model)
        assert net.optimizer.name == name and net.optimizer.alpha == 0.01
