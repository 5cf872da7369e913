"""Every name cprop accepts, in one place: activations, losses (with the output each needs and
the targets each takes), optimizers, learning-rate schedules, initialisers and dtypes.

Plain Python (no NumPy, no kernel import) so that :mod:`cprop.oracle` reads it too. The API
(:mod:`cprop.mlp`, :mod:`cprop.activations`, :mod:`cprop.optimizers`, :mod:`cprop.schedules`,
:mod:`cprop._validation`), the command line's choices, the file checks of :mod:`cprop.io`, the
estimators' parameter constraints and the oracle all read their names from here; the old
public names (``cprop.mlp.LOSSES``, ``cprop.activations.HIDDEN`` ...) are aliases of these.

The order of each tuple is the order error messages list the choices in.

The compiled module keeps its own code numbers (``_mlp.ACTIVATION_CODES``, ``LOSS_CODES``,
``OPTIMIZER_CODES``, ``INIT_CODES``); :func:`check_kernel_tables` (called when
:mod:`cprop.mlp` is imported) refuses a build whose tables name other sets than these.

Adding a loss: its kernel function (and code in ``LOSS_CODES``), its entry in ``LOSS_OUTPUT``
and ``LOSS_TARGETS`` here, its function in :mod:`cprop.oracle` (``output_delta``) and its
tests. Adding an optimizer, activation or initialiser works the same way with its table.
"""

from __future__ import annotations

__all__ = ["ACTIVATIONS", "HIDDEN", "OUTPUT", "ELEMENTWISE", "LOSS_OUTPUT", "LOSS_TARGETS",
           "LOSSES", "OPTIMIZERS", "SCHEDULES", "INITS", "DTYPES", "SKLEARN_ACTIVATIONS",
           "SKLEARN_SOLVERS", "SKLEARN_REGRESSOR_LOSSES", "SKLEARN_LEARNING_RATES", "KERNEL_TABLES",
           "check_kernel_tables", "choices"]

#: Every activation (``softmax`` works on a whole row; it and ``exp`` are for the output layer
#: only).
ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax", "exp")
#: Activations a hidden layer may have.
HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
#: Activations the output layer may have.
OUTPUT = ("sigmoid", "softmax", "identity", "exp")
#: Activations computed one value at a time (``cprop.activations.apply``/``derivative``).
ELEMENTWISE = tuple(a for a in ACTIVATIONS if a != "softmax")

#: Loss -> the output activation it needs (None: any).
LOSS_OUTPUT = {
    "squared_error": None,
    "cross_entropy": "softmax",
    "binary_cross_entropy": "sigmoid",
    "poisson": "exp",
}
#: Loss -> the targets it takes: ``"real"`` any finite number; ``"unit"`` numbers in [0, 1];
#: ``"distribution"`` rows in [0, 1] summing to 1 (integer class labels are accepted too and
#: become one-hot rows); ``"nonnegative"`` numbers >= 0 (counts, rates).
LOSS_TARGETS = {
    "squared_error": "real",
    "cross_entropy": "distribution",
    "binary_cross_entropy": "unit",
    "poisson": "nonnegative",
}
#: Losses, by name.
LOSSES = tuple(LOSS_OUTPUT)

#: Optimizers, by name (see :mod:`cprop.optimizers`).
OPTIMIZERS = ("sgd", "adam", "adamw", "rprop")
#: Learning-rate schedules, by name (see :mod:`cprop.schedules`).
SCHEDULES = ("constant", "invscaling", "step", "cosine")
#: Initial-weight distributions, by name.
INITS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal")
#: Parameter dtypes.
DTYPES = ("float64", "float32")

#: scikit-learn's hidden activation names -> cprop's (``cprop.sklearn``).
SKLEARN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh",
                       "relu": "relu"}
#: scikit-learn's solvers that ``cprop.sklearn`` implements ("lbfgs" runs SciPy's L-BFGS-B on
#: cprop's loss and gradient; the others are cprop optimizers of the same name).
SKLEARN_SOLVERS = ("lbfgs", "sgd", "adam")
#: The losses ``cprop.sklearn.MLPRegressor`` takes (identity output).
SKLEARN_REGRESSOR_LOSSES = ("squared_error", "poisson")
#: scikit-learn's ``learning_rate`` schedules, which ``cprop.sklearn`` runs itself (per epoch).
SKLEARN_LEARNING_RATES = ("constant", "invscaling", "adaptive")

#: The compiled module's code tables and the names each must hold.
KERNEL_TABLES = {
    "ACTIVATION_CODES": ACTIVATIONS,
    "LOSS_CODES": LOSSES,
    "OPTIMIZER_CODES": OPTIMIZERS,
    "INIT_CODES": INITS,
}

_TARGET_KINDS = ("real", "unit", "distribution", "nonnegative")


def choices(names) -> str:
    """``'a', 'b', 'c'``: the names as error messages list them."""
    return ", ".join(repr(n) for n in names)


def _check_self() -> None:
    """The tables agree with each other (run once, at import)."""
    problems = []
    if set(HIDDEN) | set(OUTPUT) != set(ACTIVATIONS):
        problems.append("HIDDEN and OUTPUT together must name exactly ACTIVATIONS")
    if set(LOSS_TARGETS) != set(LOSS_OUTPUT):
        problems.append("LOSS_TARGETS and LOSS_OUTPUT must name the same losses")
    for loss, out in LOSS_OUTPUT.items():
        if out is not None and out not in OUTPUT:
            problems.append(f"loss {loss!r} needs output {out!r}, which is not in OUTPUT")
    for loss, kind in LOSS_TARGETS.items():
        if kind not in _TARGET_KINDS:
            problems.append(f"loss {loss!r} has target kind {kind!r}, not one of "
                            f"{choices(_TARGET_KINDS)}")
    for name, cprop_name in SKLEARN_ACTIVATIONS.items():
        if cprop_name not in HIDDEN:
            problems.append(f"scikit-learn activation {name!r} maps to {cprop_name!r}, which "
                            "is not in HIDDEN")
    for solver in SKLEARN_SOLVERS:
        if solver != "lbfgs" and solver not in OPTIMIZERS:
            problems.append(f"scikit-learn solver {solver!r} is not a cprop optimizer")
    for loss in SKLEARN_REGRESSOR_LOSSES:
        if loss not in LOSSES:
            problems.append(f"scikit-learn regressor loss {loss!r} is not a cprop loss")
    for table in (ACTIVATIONS, HIDDEN, OUTPUT, OPTIMIZERS, SCHEDULES, INITS, DTYPES,
                  SKLEARN_SOLVERS, SKLEARN_LEARNING_RATES):
        if len(set(table)) != len(table):
            problems.append(f"{table!r} names something twice")
    if problems:
        raise ImportError("cprop._registry is inconsistent: " + "; ".join(problems))


def check_kernel_tables(kernel) -> None:
    """ImportError unless each of the compiled module's code tables names exactly the
    registry's set (a stale build, or a name added on one side only)."""
    problems = []
    for table, names in KERNEL_TABLES.items():
        codes = getattr(kernel, table, None)
        if codes is None:
            problems.append(f"{table} is missing")
            continue
        if set(codes) != set(names):
            only_kernel = sorted(set(codes) - set(names))
            only_registry = sorted(set(names) - set(codes))
            parts = []
            if only_kernel:
                parts.append(f"only the kernels know {choices(only_kernel)}")
            if only_registry:
                parts.append(f"only cprop._registry knows {choices(only_registry)}")
            problems.append(f"{table}: {'; '.join(parts)}")
    if problems:
        raise ImportError(
            f"cprop's compiled module {getattr(kernel, '__name__', kernel)!r} does not match "
            "cprop._registry (rebuild the extension: python setup.py build_ext --inplace): "
            + "; ".join(problems))


_check_self()
