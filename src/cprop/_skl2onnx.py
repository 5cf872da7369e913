"""skl2onnx converters for ``cprop.sklearn``'s estimators, registered without importing skl2onnx.

``cprop.sklearn.MLPClassifier``/``MLPRegressor`` carry scikit-learn's fitted attributes
(``coefs_``, ``intercepts_``, ``n_layers_``, ``activation``, ``out_activation_``, ``classes_``,
``_label_binarizer``), so skl2onnx's own MLP shape calculators, parser and converters convert
them as they convert scikit-learn's: the same graph (MatMul, Add and the activation per layer),
the same outputs (a classifier's ``label`` and ``probabilities``, with the ``zipmap``, ``nocl``
and ``output_class_labels`` options; a regressor's ``variable``). One change: skl2onnx reshapes
a multi-output MLPRegressor's ``(N, k)`` predictions to ``(N * k, 1)``; here they stay
``(N, k)``.

skl2onnx costs ~0.7 s to import (onnx, most of scikit-learn), so ``import cprop.sklearn`` does
not import it. :func:`register_when_imported` registers the converters at once if skl2onnx is
already imported, and otherwise, if it is installed, puts a finder on ``sys.meta_path`` that
registers them right after skl2onnx's own import finishes (and then removes itself). Without
skl2onnx nothing is installed. The cost at ``import cprop.sklearn``: one ``find_spec`` (~50 µs)
and this module (~0.3 ms), against ~0.9 s for scikit-learn itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import warnings

__all__ = ["register", "register_when_imported"]

_ALIASES = {"MLPClassifier": "CpropMLPClassifier", "MLPRegressor": "CpropMLPRegressor"}
# skl2onnx's options for its MLPClassifier converter (skl2onnx/operator_converters/
# multilayer_perceptron.py): the same here, so to_onnx(..., options=...) works as for sklearn's.
_CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "output_class_labels": [False, True],
                       "nocl": [True, False]}

_classes: tuple = ()
_registered = False


def _regressor_shape(operator) -> None:
    """skl2onnx's regressor shape calculator, with ``n_outputs_`` columns (not 1)."""
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes

    calculate_linear_regressor_output_shapes(operator)
    out = operator.outputs[0]
    out.type = out.type.__class__([operator.inputs[0].get_first_dimension(),
                                   operator.raw_operator.n_outputs_])


def _convert_regressor(scope, operator, container) -> None:
    """skl2onnx's MLPRegressor converter; for k > 1 outputs its ``(N * k, 1)`` result (the
    ``(N, k)`` predictions flattened row by row) is reshaped back to ``(N, k)``. A Poisson
    regressor (``out_activation_ == "exp"``, which skl2onnx's converter does not know) is
    converted with an identity output and an ``Exp`` node after it."""
    from skl2onnx.common._apply_operation import apply_reshape
    from skl2onnx.operator_converters.multilayer_perceptron import (
        convert_sklearn_mlp_regressor,
    )

    model = operator.raw_operator
    exp_output = model.out_activation_ == "exp"
    if exp_output:
        model = _IdentityOutput(model)
    _check_activations(model)
    n_outputs = model.n_outputs_
    final = operator.outputs[0].full_name
    if n_outputs == 1 and not exp_output:
        convert_sklearn_mlp_regressor(scope, operator, container)
        return
    flat = scope.get_unique_variable_name("flat_predictions")
    convert_sklearn_mlp_regressor(scope, _Redirected(operator, [flat], model), container)
    shaped = scope.get_unique_variable_name("net_inputs") if exp_output else final
    apply_reshape(scope, flat, shaped, container, desired_shape=(-1, n_outputs))
    if exp_output:
        container.add_node("Exp", shaped, final, name=scope.get_unique_operator_name("Exp"))


class _IdentityOutput:
    """A fitted estimator seen with an identity output layer (its ``exp`` applied after)."""

    out_activation_ = "identity"

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)


class _Redirected:
    """``operator`` with its output names replaced (the regressor converter writes to
    ``operator.output_full_names``)."""

    def __init__(self, operator, names, raw_operator=None):
        self._operator = operator
        self.output_full_names = names
        self.raw_operator = operator.raw_operator if raw_operator is None else raw_operator

    def __getattr__(self, name):
        return getattr(self._operator, name)


def _convert_classifier(scope, operator, container) -> None:
    from skl2onnx.operator_converters.multilayer_perceptron import (
        convert_sklearn_mlp_classifier,
    )

    _check_activations(operator.raw_operator)
    convert_sklearn_mlp_classifier(scope, operator, container)


def _check_activations(model) -> None:
    # skl2onnx's converter knows scikit-learn's activations; name anything else clearly
    known = ("identity", "tanh", "logistic", "relu", "softmax")
    for what, name in (("activation", model.activation),
                       ("out_activation_", model.out_activation_)):
        if name not in known:
            raise NotImplementedError(
                f"skl2onnx's MLP converter has no {what}={name!r} (it knows "
                f"{', '.join(known)}); export the network itself with "
                f"{type(model).__name__}.net_.to_onnx(path)")


def register() -> None:
    """Register the converters with skl2onnx (imports it). Idempotent, and safe to run twice
    at once (it re-registers the same functions), so no lock: one held across the imports here
    could deadlock with another thread's import of skl2onnx."""
    global _registered
    if _registered or not _classes:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    for cls in _classes:
        if cls.__name__ == "MLPClassifier":
            update_registered_converter(
                cls, _ALIASES[cls.__name__], calculate_linear_classifier_output_shapes,
                _convert_classifier, options=_CLASSIFIER_OPTIONS)
        else:
            update_registered_converter(cls, _ALIASES[cls.__name__], _regressor_shape,
                                        _convert_regressor)
    _registered = True


def _register_quietly() -> None:
    # Called from inside skl2onnx's import: a failure must not break that import.
    try:
        register()
    except Exception as exc:  # noqa: BLE001 - any failure becomes a warning
        warnings.warn(f"cprop.sklearn could not register its skl2onnx converters ({exc!r}); "
                      "to_onnx will not convert cprop's estimators", RuntimeWarning,
                      stacklevel=2)


class _Loader(importlib.abc.Loader):
    """skl2onnx's own loader, then the registration."""

    def __init__(self, loader, finder):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        spec = module.__spec__
        try:
            self._loader.exec_module(module)
        finally:
            spec.loader = module.__loader__ = self._loader
        _uninstall(self._finder)
        _register_quietly()

    def __getattr__(self, name):  # get_resource_reader, is_package, ...
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds skl2onnx with the other finders and wraps its loader. It stays on
    ``sys.meta_path`` until skl2onnx is actually imported (a mere ``find_spec`` probe, as
    libraries do to test for optional packages, executes nothing)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "skl2onnx":
            return None
        spec = None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or isinstance(finder, _Finder) or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, self)
        return spec


def _uninstall(finder) -> None:
    try:
        sys.meta_path.remove(finder)
    except ValueError:
        pass


def register_when_imported(*classes) -> None:
    """Make skl2onnx convert ``classes`` (cprop's estimators) once it is imported."""
    global _classes
    _classes = classes
    if "skl2onnx" in sys.modules:
        # (if another thread is still importing it, the imports in register() wait for that)
        _register_quietly()
        return
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    try:
        installed = importlib.util.find_spec("skl2onnx") is not None
    except (ImportError, ValueError):
        installed = False
    if installed:
        sys.meta_path.insert(0, _Finder())
