"""scikit-learn estimators trained by cprop's compiled kernels.

``cprop.sklearn.MLPClassifier`` and ``cprop.sklearn.MLPRegressor`` take scikit-learn's
parameters, attributes and methods (``sklearn.neural_network.MLPClassifier`` /
``MLPRegressor``) and reproduce its training: the same initial weights for the same
``random_state``, the same shuffles, minibatches, L2 term, optimizers, learning-rate schedules
and stopping rules, so ``loss_curve_`` and ``coefs_`` agree with scikit-learn's to rounding
(``tests/test_sklearn.py`` checks ~1e-10). The forward pass, backpropagation and the update of
every minibatch run in cprop's kernels without the GIL. So does, in the common case, the whole
epoch loop (scikit-learn's shuffles from the estimator's RandomState, its reported loss,
stopping rule and invscaling rate: one kernel call per fit, ``MLP.run_sklearn_epochs``); early
stopping, verbose output and ``partial_fit`` run it here in Python, epoch by epoch, as
scikit-learn does (``_fit_stochastic``), with the same results.

scikit-learn is an optional dependency: ``pip install "cprop[sklearn]"``. ``import cprop`` does
not import this module.

How scikit-learn's definitions map onto cprop's (all checked numerically by the tests):

- L2: scikit-learn adds ``alpha * W / batch_len`` to a batch's weight gradient (and
  ``alpha/2 * ||W||^2 / batch_len`` to its loss), cprop's kernels ``alpha * W``; each step is
  given ``alpha / len(that batch)``, so a short last batch is exact too.
- SGD momentum: scikit-learn's velocity ``v <- momentum v - lr g`` is ``-lr`` times torch's
  buffer ``b <- momentum b + g`` that the kernels keep; when the learning rate changes
  (``invscaling``, ``adaptive``) the buffer is rescaled by ``lr_old / lr_new`` so the step is
  scikit-learn's exactly.
- Adam: scikit-learn adds ``epsilon`` to ``sqrt(v)``, torch (the kernels) to
  ``sqrt(v / (1 - beta_2**t))``; each step is given ``epsilon / sqrt(1 - beta_2**t)``, which
  makes the two updates equal.
- Squared error: scikit-learn's gradient is that of ``sum_k (y_k - t_k)**2 / 2`` per sample
  (cprop's ``squared_error``), but the loss it reports divides by the number of outputs;
  ``loss_curve_``/``loss_`` here report that (scaled) value too.

The stochastic solvers train one minibatch at a time with the estimator's own optimizer state
(they need a per-step ``epsilon`` and ``alpha``, which ``MLP.train_step`` treats as part of the
optimizer's identity; see ``_run_epoch`` and ``_run_kernel_epochs``); L-BFGS takes its
objective from ``MLP.loss_and_gradient``. Everything else goes through ``MLP``'s public methods.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np

try:
    import scipy.optimize
    import scipy.sparse
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (
        _check_partial_fit_first_call,
        type_of_target,
        unique_labels,
    )
    from sklearn.utils.optimize import _check_optimize_result
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

    if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 7):
        raise ImportError(f"scikit-learn {sklearn.__version__} is installed")
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "cprop.sklearn needs scikit-learn >= 1.7 (pip install \"cprop[sklearn]\"): "
        f"{exc}") from exc

from cprop import _registry, _skl2onnx
from cprop.mlp import (
    EPOCHS_RATE_HANDOFF,
    FAILURE_LOSS,
    FAILURE_UPDATE,
    FAILURE_ZERO_WEIGHT,
    MLP,
    SklearnEpochs,
)
from cprop._validation import as_float_array, check_learning_rate
from cprop.optimizers import OptimizerOptions

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's hidden activation names -> cprop's.
_HIDDEN = _registry.SKLEARN_ACTIVATIONS
# The solvers that train minibatches in the kernels (partial_fit takes only these).
_STOCHASTIC_SOLVERS = tuple(s for s in _registry.SKLEARN_SOLVERS if s != "lbfgs")
# Epochs per call of the kernel's epoch loop at most (its loss_curve_ buffer: 32 KiB).
_KERNEL_EPOCHS = 4096


class _Solver:
    """scikit-learn's stochastic optimizer state, in the kernels' (torch's) form.

    ``lr`` is scikit-learn's current ``learning_rate``; ``state``/``steps`` are what the kernel
    updates (SGD: the momentum buffer b, with scikit-learn's velocity = -``buffer_lr`` * b;
    Adam: m, v and the step count t).
    """

    def __init__(self, est, n_params: int, dtype):
        self.solver = est.solver
        self.lr_init = float(est.learning_rate_init)
        self.lr = self.lr_init
        self.schedule = est.learning_rate
        self.power_t = float(est.power_t)
        self.momentum = float(est.momentum) if est.solver == "sgd" else 0.0
        self.nesterov = bool(est.nesterovs_momentum) and self.momentum > 0
        self.beta_1, self.beta_2 = float(est.beta_1), float(est.beta_2)
        self.epsilon = float(est.epsilon)
        self.options = OptimizerOptions(
            est.solver, self.momentum, self.nesterov, self.beta_1, self.beta_2, self.epsilon)
        self.state = self.options.fresh_state(n_params, dtype, self.lr)
        self.steps = np.zeros(1, dtype=np.int64)
        self.buffer_lr = self.lr

    def epoch_options(self, alpha: float) -> OptimizerOptions:
        """Options for the next epoch's steps, which the kernel runs with scikit-learn's
        conventions (each batch's L2 is ``alpha / len(batch)``, Adam's epsilon is added to
        ``sqrt(v)``); SGD momentum: the buffer is rescaled when the learning rate changed."""
        if self.solver == "sgd" and self.momentum and self.lr != self.buffer_lr:
            # keep scikit-learn's velocity (-lr * b) across a change of the learning rate
            self.state *= self.buffer_lr / self.lr
            self.buffer_lr = self.lr
        return self.options_with(alpha)

    def options_with(self, alpha: float) -> OptimizerOptions:
        """The steps' options (the kernel's loop rescales the momentum buffer itself)."""
        return OptimizerOptions(self.solver, self.momentum, self.nesterov, self.beta_1,
                                self.beta_2, self.epsilon, alpha)

    def iteration_ends(self, time_step: int) -> None:
        if self.solver == "sgd" and self.schedule == "invscaling":
            self.lr = self.lr_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose) -> bool:
        if self.solver != "sgd" or self.schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.lr <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.lr /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.lr)
        return False


def _non_finite(detail: str) -> ValueError:
    return ValueError(
        "Solver produced non-finite parameter weights. The input data may contain large values "
        f"and need to be preprocessed. ({detail})")


def _layer_array(value, name: str, shape: tuple, dtype, why: str = "") -> np.ndarray:
    """``value`` as a finite array of ``dtype`` and ``shape``, or an error naming ``name``."""
    a = as_float_array(value, name, dtype)
    if a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}"
                         + (f" ({why})" if why else ""))
    return a


def _assign_layers(name: str, values: list, targets) -> None:
    """Copy ``values`` (one array per layer) into the network's ``targets`` (all or none)."""
    if len(values) != len(targets):
        raise ValueError(f"{name}: expected {len(targets)} arrays, one per layer, "
                         f"got {len(values)}")
    arrays = [_layer_array(v, f"{name}[{l}]", t.shape, t.dtype)
              for l, (v, t) in enumerate(zip(values, targets))]
    for a, t in zip(arrays, targets):
        t[...] = a


class _LayerList(list):
    """A fitted estimator's ``coefs_``/``intercepts_``: the network's arrays (writable views).
    Assigning an item copies the new array into that layer, as replacing the item of
    scikit-learn's list replaces the layer."""

    def __init__(self, name: str, arrays):
        super().__init__(arrays)
        self._name = name

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            raise TypeError(f"{self._name}[{index.start}:{index.stop}]: assign one layer "
                            f"({self._name}[l] = array) or the whole list ({self._name} = [...])")
        l = range(len(self))[index]  # IndexError as for a list
        target = list.__getitem__(self, l)
        target[...] = _layer_array(value, f"{self._name}[{l}]", target.shape, target.dtype)

    def __reduce__(self):  # pickles (and copies) as a plain list of arrays
        return (list, (list(self),))


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share (scikit-learn's BaseMultilayerPerceptron)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_registry.SKLEARN_ACTIVATIONS))],
        "solver": [StrOptions(set(_registry.SKLEARN_SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions(set(_registry.SKLEARN_LEARNING_RATES))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions(set(_registry.DTYPES)), None],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                 learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
                 warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
                 beta_1, beta_2, epsilon, n_iter_no_change, max_fun, dtype):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype

    # -- the parameters live in a cprop.MLP; coefs_/intercepts_ are views into it --------------
    #
    # Before the first fit, coefs_ and intercepts_ may be set by hand (as scikit-learn's own
    # worked-example test does): they are kept as the lists given, so that item assignment
    # (``est.coefs_[0] = W``) works as on scikit-learn's lists, and the first partial_fit (or a
    # fit with warm_start=True) starts from them; see _given_pairs.

    def __sklearn_is_fitted__(self) -> bool:
        return "_net" in self.__dict__

    @property
    def coefs_(self) -> list:
        """``coefs_[l]``: the ``(n_in, n_out)`` weights of layer l (a writable view)."""
        return self._layers("coefs_")

    @coefs_.setter
    def coefs_(self, values) -> None:
        self._set_layers("coefs_", values)

    @property
    def intercepts_(self) -> list:
        """``intercepts_[l]``: the ``(n_out,)`` biases of layer l (a writable view)."""
        return self._layers("intercepts_")

    @intercepts_.setter
    def intercepts_(self, values) -> None:
        self._set_layers("intercepts_", values)

    _GIVEN = {"coefs_": "_given_coefs", "intercepts_": "_given_intercepts"}

    def _layers(self, name: str) -> list:
        net = self.__dict__.get("_net")
        if net is not None:
            return _LayerList(name, net.weights if name == "coefs_" else net.biases)
        given = self.__dict__.get(self._GIVEN[name])
        if given is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} before fit")
        return given  # the list itself: est.coefs_[l] = W changes it, as in scikit-learn

    def _set_layers(self, name: str, values) -> None:
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError(f"{name}: expected a list of arrays, one per layer, got "
                            f"{type(values).__name__}")
        net = self.__dict__.get("_net")
        if net is not None:
            _assign_layers(name, list(values), net.weights if name == "coefs_" else net.biases)
        else:
            # before the first fit: kept as given, checked when training starts from them
            self.__dict__[self._GIVEN[name]] = list(values)

    def _given_pairs(self, layer_units, dtype, hidden_layer_sizes) -> list:
        """The hand-set ``coefs_``/``intercepts_`` as ``(W, b)`` pairs of ``dtype``, checked
        against the network this call needs (``layer_units``)."""
        coefs = self.__dict__.get("_given_coefs")
        intercepts = self.__dict__.get("_given_intercepts")
        if coefs is None or intercepts is None:
            have, missing = ("coefs_", "intercepts_") if intercepts is None else (
                "intercepts_", "coefs_")
            raise ValueError(f"{have} was set by hand but {missing} was not: set both (one "
                             "array per layer) to start from given weights")
        why = (f"the network here has layer sizes {layer_units}: n_features_in_="
               f"{layer_units[0]}, hidden_layer_sizes={tuple(hidden_layer_sizes)}, "
               f"n_outputs_={layer_units[-1]}")
        pairs = []
        for name, given in (("coefs_", coefs), ("intercepts_", intercepts)):
            if len(given) != len(layer_units) - 1:
                raise ValueError(f"{name}: expected {len(layer_units) - 1} arrays, one per "
                                 f"layer, got {len(given)} ({why})")
        for l, (n_in, n_out) in enumerate(zip(layer_units[:-1], layer_units[1:])):
            W = _layer_array(coefs[l], f"coefs_[{l}]", (n_in, n_out), dtype, why)
            b = _layer_array(intercepts[l], f"intercepts_[{l}]", (n_out,), dtype, why)
            pairs.append((W, b))
        return pairs

    def _fitted_net(self) -> MLP:
        check_is_fitted(self)
        return self._net

    @property
    def net_(self) -> MLP:
        """The fitted :class:`cprop.MLP` (shared, not a copy: ``net_.save(path)`` saves it)."""
        return self._fitted_net()

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__
        net = state.pop("_net", None)
        if net is not None:
            # cprop.MLP holds a compiled plan and a lock: pickle what rebuilds it.
            state["_net_spec"] = {
                "layer_sizes": list(net.layer_sizes), "hidden": net.hidden,
                "output": net.output, "loss": net.loss_name, "dtype": net.dtype.name,
                "params": net.params.copy()}
        return state

    def __setstate__(self, state):
        spec = state.pop("_net_spec", None)
        super().__setstate__(state)
        if spec is not None:
            net = MLP(spec["layer_sizes"], hidden=spec["hidden"], output=spec["output"],
                      loss=spec["loss"], dtype=spec["dtype"], seed=0)
            net.params[:] = spec["params"]
            self._net = net

    # -- fitting (scikit-learn's BaseMultilayerPerceptron._fit, on cprop's kernels) ---------------

    def _loss_scale(self) -> float:
        """scikit-learn's reported data loss / cprop's (1/n_outputs for squared error)."""
        return 1.0

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden_layer_sizes}.")
        fitted = "_net" in self.__dict__
        given = not fitted and ("_given_coefs" in self.__dict__
                                or "_given_intercepts" in self.__dict__)
        # scikit-learn: a new network unless there is one (or hand-set coefs_) and this is
        # partial_fit or a warm start; a plain fit draws fresh weights even over hand-set ones
        first_pass = not (fitted or given) or (not self.warm_start and not incremental)
        from_given = given and not first_pass

        X, y = self._validate_input(X, y, incremental, reset=first_pass or from_given)
        if scipy.sparse.issparse(X):
            X = X.toarray()  # the kernels take dense rows
        if sample_weight is not None:
            # scikit-learn's own check (length, numbers, dtype); cprop's kernels also refuse
            # negative or non-finite weights, with a message naming sample_weight
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        n_features = X.shape[1]
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features] + hidden_layer_sizes + [self.n_outputs_]

        self._random_state = check_random_state(self.random_state)
        if first_pass or from_given:
            dtype = np.dtype(self.dtype) if self.dtype is not None else (
                np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64))
            given_pairs = (self._given_pairs(layer_units, dtype, hidden_layer_sizes)
                           if from_given else None)
            self._initialize(y, layer_units, dtype, given_pairs)
        net = self._net
        if net.layer_sizes != layer_units:
            raise ValueError(f"The fitted network has layer sizes {net.layer_sizes}; this call "
                             f"needs {layer_units} (warm_start/partial_fit keep the shapes)")
        net.check_params()
        X = np.ascontiguousarray(X, dtype=net.dtype)
        T = np.ascontiguousarray(y, dtype=net.dtype)

        if self.solver == "lbfgs":
            self._fit_lbfgs(X, T, sample_weight)
        else:
            self._fit_stochastic(X, T, incremental, sample_weight)
        return self

    def _initialize(self, y, layer_units, dtype, given_pairs=None):
        out_activation, output, loss = self._output_layer()
        if given_pairs is not None:
            # Hand-set coefs_/intercepts_ (checked by _given_pairs). scikit-learn then skips its
            # initialisation and uses the attributes set beside them (its worked-example test
            # sets n_iter_, t_, loss_curve_, best_loss_, ...): kept here when set, else the
            # defaults a first fit gives them. No random draws, as in scikit-learn.
            if out_activation != self.__dict__.get("out_activation_", out_activation):
                raise ValueError(f"out_activation_ was set to {self.out_activation_!r}, but "
                                 f"these targets need {out_activation!r}")
            pairs, keep = given_pairs, self.__dict__
        else:
            # scikit-learn's initialisation, drawn from the same RandomState in the same order:
            # uniform(-b, b) weights and biases, b = sqrt(factor / (fan_in + fan_out)).
            factor = 2.0 if self.activation == "logistic" else 6.0
            pairs, keep = [], {}
            for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
                bound = np.sqrt(factor / (fan_in + fan_out))
                W = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
                b = self._random_state.uniform(-bound, bound, fan_out)
                pairs.append((W.astype(dtype), b.astype(dtype)))
        defaults = {"n_iter_": 0, "t_": 0}
        if self.solver != "lbfgs":
            defaults.update(loss_curve_=[], _no_improvement_count=0)
            if self.early_stopping:
                defaults.update(validation_scores_=[], best_validation_score_=-np.inf,
                                best_loss_=None)
            else:
                defaults.update(best_loss_=np.inf, validation_scores_=None,
                                best_validation_score_=None)
        for name, value in defaults.items():
            setattr(self, name, keep.get(name, value))
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = out_activation
        # The network's own generator is unused (shuffles come from random_state), so seed 0.
        self._net = MLP(layer_units, hidden=_HIDDEN[self.activation], output=output, loss=loss,
                        dtype=dtype, seed=0, init=pairs)
        self.__dict__.pop("_given_coefs", None)
        self.__dict__.pop("_given_intercepts", None)
        self._best_params = self._net.params.copy()
        self._solver = None

    def _fit_lbfgs(self, X, T, sample_weight=None):
        net = self._net
        # scikit-learn divides the L2 term by the weight sum (the row count without weights)
        n = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        scale = self._loss_scale()
        alpha = float(self.alpha)
        is_weight = np.zeros(net.n_params, dtype=bool)
        offset = 0
        for n_in, n_out in zip(net.layer_sizes[:-1], net.layer_sizes[1:]):
            is_weight[offset:offset + n_in * n_out] = True
            offset += n_in * n_out + n_out

        def loss_grad(p):
            # scikit-learn's objective: reported data loss + alpha/2 ||W||^2 / n, and its
            # exact gradient.
            net.params[:] = p
            loss, grad = net.loss_and_gradient(X, T, sample_weight)
            g = grad.astype(np.float64) * scale
            w = p[is_weight]
            g[is_weight] += (alpha / n) * w
            return loss * scale + 0.5 * alpha * float(np.dot(w, w)) / n, g

        res = scipy.optimize.minimize(
            loss_grad, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        self.n_iter_ = _check_optimize_result("lbfgs", res, self.max_iter)
        self.loss_ = float(res.fun)
        if not np.isfinite(res.x).all():
            raise _non_finite("L-BFGS-B returned non-finite parameters")
        net.params[:] = res.x

    def _fit_stochastic(self, X, T, incremental, sample_weight=None):
        net = self._net
        if not incremental or self.__dict__.get("_solver") is None:
            self._solver = _Solver(self, net.n_params, net.dtype)
        solver = self._solver
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            # don't stratify in multilabel classification (as scikit-learn)
            stratify = T if self._is_classifier and self.n_outputs_ == 1 else None
            if sample_weight is None:
                X_train, X_val, T_train, T_val = train_test_split(
                    X, T, random_state=self._random_state, test_size=self.validation_fraction,
                    stratify=stratify)
                sw_train = sw_val = None
            else:  # the same split (it depends on the row count only), weights alongside
                X_train, X_val, T_train, T_val, sw_train, sw_val = train_test_split(
                    X, T, sample_weight, random_state=self._random_state,
                    test_size=self.validation_fraction, stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val = self._targets_to_labels(T_val)
            X_train = np.ascontiguousarray(X_train)
            T_train = np.ascontiguousarray(T_train)
        else:
            X_train, T_train, X_val, y_val = X, T, None, None
            sw_train, sw_val = sample_weight, None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=np.intp)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped", stacklevel=2)
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        scale = self._loss_scale()
        alpha = float(self.alpha)
        diverged = None
        # Two loops run the epochs, with the same results: the kernel's (_run_kernel_epochs:
        # all epochs in one nogil call, shuffles, steps, loss, stopping rule and invscaling
        # rate included; it returns here only to run _Solver.trigger_stopping, on a refused
        # step, Ctrl-C, or max_iter) for the common case, and this per-epoch Python loop for
        # what needs Python between epochs: early_stopping (a validation score each epoch),
        # verbose (prints), partial_fit (one epoch), and the rare states the kernel's loop
        # does not take (see _kernel_loop_applies).
        kernel_loop = self._kernel_loop_applies(incremental, early_stopping, solver)
        self._kernel_loop_epochs = 0
        try:
            self.n_iter_ = 0
            while self.n_iter_ < self.max_iter:
                if kernel_loop:
                    if self._run_kernel_epochs(X_train, T_train, sample_idx, batch_size, solver,
                                               alpha, scale, sw_train):
                        # invscaling's next rate is out of range: computed (and refused) here
                        solver.iteration_ends(self.t_)
                        kernel_loop = False
                else:
                    if self.shuffle:
                        # scikit-learn's shuffle from the same RandomState, handed to the kernel
                        # as the epoch's row order (no copy of the rows)
                        # = sklearn.utils.shuffle(sample_idx, random_state=...) (the same
                        # draws), without its input checks, which cost more than a small
                        # epoch's training
                        perm = np.arange(n_samples)
                        self._random_state.shuffle(perm)
                        sample_idx = sample_idx[perm]
                    accumulated_loss, diverged = self._run_epoch(
                        X_train, T_train, sample_idx, batch_size, solver, alpha, scale, sw_train)
                    if diverged is not None:
                        if not early_stopping:
                            raise _non_finite(diverged)
                        # scikit-learn trains on with inf/NaN weights (its losses and validation
                        # scores turn NaN) and restores the best weights at the end; nothing
                        # finite can follow, so stop here: this epoch counts, with a NaN loss
                        # and validation score, and the best weights are restored below.
                        self.n_iter_ += 1
                        self.loss_ = np.nan
                        self.t_ += n_samples
                        self.loss_curve_.append(self.loss_)
                        self.validation_scores_.append(np.nan)
                        if self.verbose:
                            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                            print("Validation score: %f" % self.validation_scores_[-1])
                        break
                    self.n_iter_ += 1
                    self.loss_ = accumulated_loss / n_samples
                    self.t_ += n_samples
                    self.loss_curve_.append(self.loss_)
                    if self.verbose:
                        print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                    self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
                    solver.iteration_ends(self.t_)
                # (after the kernel's loop: its last epoch's count; only a count past
                # n_iter_no_change or max_iter made it return)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    if solver.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                        "optimization hasn't converged yet." % self.max_iter, ConvergenceWarning,
                        stacklevel=2)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=2)
        if early_stopping:
            net.params[:] = self._best_params
        if diverged is not None:
            best = (f"the weights with the best validation score "
                    f"({self.best_validation_score_:g}) were restored"
                    if np.isfinite(self.best_validation_score_) else
                    "no epoch had a finite validation score, so the starting weights were "
                    "restored")
            warnings.warn(
                f"Training diverged in {diverged}. It stopped there and {best}; "
                "loss_curve_[-1] and validation_scores_[-1] are NaN. Try a smaller "
                "learning_rate_init or scale the inputs.", ConvergenceWarning, stacklevel=2)

    def _kernel_loop_applies(self, incremental, early_stopping, solver) -> bool:
        """Whether ``fit`` runs its epochs in the kernel's loop (``MLP.run_sklearn_epochs``):
        not for early_stopping, verbose or partial_fit (they need Python every epoch), nor for
        states the kernel would compute in other arithmetic than this loop does: a
        ``random_state`` RandomState on another bit generator than MT19937 (when shuffling),
        a ``tol``/``best_loss_`` that is not a Python float or int (a float32 would compare in
        float32 here), hand-set counters that are not ints, or a learning rate the network
        refuses (this loop then raises run_steps' error)."""
        if incremental or early_stopping or self.verbose:
            return False
        if self.shuffle and not (
                type(self._random_state) is np.random.RandomState
                and self._random_state.get_state(legacy=False)["bit_generator"] == "MT19937"):
            return False
        numbers = (self.tol, self.best_loss_, self.n_iter_no_change)
        if not all(isinstance(v, (float, int)) and not isinstance(v, bool) for v in numbers):
            return False
        if not all(type(v) is int for v in (self.t_, self._no_improvement_count)):
            return False
        try:
            check_learning_rate(solver.lr, self._net.dtype)
        except (TypeError, ValueError):
            return False
        return True

    def _run_kernel_epochs(self, X, T, sample_idx, batch_size, solver, alpha, scale,
                           sample_weight=None) -> bool:
        """The remaining epochs (up to max_iter, at most _KERNEL_EPOCHS) in one kernel call
        (``_fit_stochastic``'s per-epoch loop in C: ``src/cprop/_kernels/_sklearn_epochs.pxi``),
        their results recorded as that loop records them, also when Ctrl-C interrupts it;
        ``sample_idx`` is shuffled in place, and the RandomState left as its shuffles leave it.
        Raises on a refused step as the per-epoch loop does. Returns True when the next
        invscaling rate is out of range (the caller computes it, and goes on per epoch)."""
        loop = SklearnEpochs()
        loop.lr, loop.buffer_lr = solver.lr, solver.buffer_lr
        loop.rescale_momentum = solver.solver == "sgd" and bool(solver.momentum)
        loop.invscaling = solver.solver == "sgd" and solver.schedule == "invscaling"
        loop.lr_init, loop.power_t = solver.lr_init, solver.power_t
        loop.loss_scale, loop.tol = scale, self.tol
        loop.n_iter_no_change = self.n_iter_no_change
        loop.best_loss, loop.t = self.best_loss_, self.t_
        loop.no_improvement_count = self._no_improvement_count
        loop.shuffle = bool(self.shuffle)
        rng = self._random_state
        if loop.shuffle:
            rng_state = rng.get_state(legacy=False)
            loop.set_mt19937(rng_state["state"]["key"], rng_state["state"]["pos"])
        # (at most _KERNEL_EPOCHS epochs a call, so a huge max_iter allocates nothing huge)
        losses = np.empty(min(self.max_iter - self.n_iter_, _KERNEL_EPOCHS), dtype=np.float64)
        try:
            status, batch_loss = self._net.run_sklearn_epochs(
                X, T, batch_size, solver.options_with(alpha), solver.state, solver.steps,
                sample_idx, loop, losses, sample_weight=sample_weight)
        finally:  # (Ctrl-C too: the epochs done count, as in the per-epoch loop)
            done = loop.epochs_done
            if loop.shuffle:
                key, pos = loop.get_mt19937()
                rng_state["state"] = {"key": key, "pos": pos}
                rng.set_state(rng_state)
            solver.lr, solver.buffer_lr = loop.lr, loop.buffer_lr
            if done:
                self.loss_curve_.extend(losses[:done].tolist())
                self.loss_ = self.loss_curve_[-1]
                self.n_iter_ += done
                self.t_ = loop.t
                self._no_improvement_count = loop.no_improvement_count
                if loop.best_loss != self.best_loss_:
                    self.best_loss_ = loop.best_loss
                self._kernel_loop_epochs += done
        self._raise_for_failure(status, batch_loss, solver)
        return status == EPOCHS_RATE_HANDOFF

    def _raise_for_failure(self, failure, batch_loss, solver) -> None:
        """The error of a refused step in epoch ``n_iter_ + 1`` (none for status 0 or the
        kernel loop's EPOCHS_* returns)."""
        if failure == FAILURE_ZERO_WEIGHT:  # scikit-learn's np.average raises this
            raise ZeroDivisionError(
                f"Weights sum to zero, can't be normalized (epoch {self.n_iter_ + 1}: the "
                "sample_weight of a minibatch sums to 0; that step was not applied)")
        if failure in (FAILURE_LOSS, FAILURE_UPDATE):
            raise _non_finite(self._diverged_detail(batch_loss, solver))

    def _diverged_detail(self, batch_loss, solver) -> str:
        return (f"epoch {self.n_iter_ + 1}: batch loss {batch_loss:g} with learning rate "
                f"{solver.lr}; that step was not applied")

    def _run_epoch(self, X, T, order, batch_size, solver, alpha, scale,
                   sample_weight=None) -> tuple:
        """One pass over the rows ``order`` of (X, T), in one kernel call; returns
        ``(accumulated_loss, diverged)``: scikit-learn's accumulated loss, the sum over batches
        of (loss * scale + L2 penalty) * batch length, and None; or, when a step's loss or
        update was not finite (the kernel refused it and stopped; the steps before it in this
        epoch were applied), ``(nan, what happened)``."""
        failure, epoch_loss, batch_loss, l2 = self._net.run_steps(
            X, T, solver.lr, batch_size, solver.epoch_options(alpha), solver.state, solver.steps,
            order=order, sklearn_conventions=True, sample_weight=sample_weight)
        if failure == FAILURE_ZERO_WEIGHT:
            self._raise_for_failure(failure, batch_loss, solver)
        if failure:
            return np.nan, self._diverged_detail(batch_loss, solver)
        return epoch_loss * scale * order.shape[0] + l2, None

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val=None):
        if early_stopping:
            val_score = self._score(X_val, y_val, sw_val)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best_params = self._net.params.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _forward(self, X, check_input=True):
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        if scipy.sparse.issparse(X):
            X = X.toarray()
        return self._net.forward(np.ascontiguousarray(X, dtype=self._net.dtype))

    def _score(self, X, y, sample_weight=None):
        # The early-stopping score. Non-finite predictions score NaN, as in scikit-learn (which
        # computes them; cprop's forward refuses to return outputs that overflowed).
        try:
            y_pred = self._predict(X, check_input=False)
        except FloatingPointError:
            return np.nan
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return self._score_function(y, y_pred, sample_weight)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_PARAMS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Width of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden activation (cprop's ``identity``, ``sigmoid``, ``tanh``, ``relu``).
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        ``'sgd'`` and ``'adam'`` train minibatches in cprop's kernels; ``'lbfgs'`` runs
        ``scipy.optimize.minimize(method='L-BFGS-B', jac=True)`` on the full batch, loss and
        gradient from cprop's kernels (``max_iter``, ``max_fun``, ``tol`` as scikit-learn).
    alpha : float, default=1e-4
        L2 strength, scikit-learn's definition (divided by the batch length).
    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        scikit-learn's schedules for ``solver='sgd'`` (per epoch; ``invscaling`` uses the
        number of samples seen, ``adaptive`` divides by 5 when progress stalls).
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start,
    momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon,
    n_iter_no_change, max_fun
        As in scikit-learn, with the same meaning and defaults. ``random_state`` draws the
        initial weights, the early-stopping split and every epoch's shuffle exactly as
        scikit-learn does, so the same ``random_state`` gives the same initial weights.
    dtype : {'float64', 'float32'} or None, default=None
        cprop extra: the network's precision. None follows scikit-learn: float32 data trains
        in float32, anything else in float64.
"""

_WEIGHTS_DOC = """
    coefs_ and intercepts_
    ----------------------
    After a fit, ``coefs_[l]`` (``(n_in, n_out)``) and ``intercepts_[l]`` (``(n_out,)``) are
    writable views into the network's parameters; ``coefs_[l] = W`` and ``coefs_ = [...]`` copy
    into the network (checked: shapes, real finite numbers).

    Set on a new estimator (both of them, one array per layer; scikit-learn's worked-example
    test sets them so), they are where the first ``partial_fit``, or a ``fit`` with
    ``warm_start=True``, starts, as in scikit-learn (a ``fit`` without ``warm_start`` draws
    fresh weights, as scikit-learn's does). They are checked then, against the network the
    data and ``hidden_layer_sizes`` need, with errors that name ``coefs_[l]`` or
    ``intercepts_[l]``, and converted to the network's dtype. Nothing else needs setting
    (``n_iter_``, ``t_``, ``loss_curve_``, ``best_loss_`` start as after a first fit unless set
    too); the estimator counts as fitted only after that call.
"""

_NOTES_DOC = """
    Notes
    -----
    Differences from scikit-learn:

    - No ``sample_weight`` (cprop's kernels weigh every sample equally).
    - Sparse input is accepted and converted to a dense array (the kernels take dense rows).
    - Losses are computed from the logits, not from probabilities clipped to
      ``[eps, 1 - eps]``: they differ from scikit-learn's only when a predicted probability is
      within ~1e-16 of 0 or 1 (cprop's is then the exact, larger value), and the gradients do
      not differ.
    - A diverging fit: a step whose loss or update is not finite is refused (not applied).
      Without ``early_stopping``, ``fit`` and ``partial_fit`` then raise scikit-learn's
      ``ValueError`` ("Solver produced non-finite parameter weights ...", plus the epoch) at
      once, keeping the last finite weights; scikit-learn trains on with inf/NaN weights and
      raises at the end. With ``early_stopping=True`` nothing is raised, as in scikit-learn:
      training stops in that epoch and the weights with the best validation score are restored
      (the starting weights if no epoch had a finite score), with a ``ConvergenceWarning``.
      That epoch counts: ``n_iter_`` and ``t_`` include it, and ``loss_``,
      ``loss_curve_[-1]`` and ``validation_scores_[-1]`` are NaN, so ``loss_curve_`` and
      ``validation_scores_`` keep their length ``n_iter_``. scikit-learn trains on until
      ``max_iter`` or its stopping rule, recording NaN (or inf) losses and NaN scores, so its
      ``n_iter_`` is larger; the epochs before are the same, and so are the weights restored.
      A validation pass whose outputs overflow scores NaN (scikit-learn's regressor: the same;
      its classifier turns the NaN probabilities into labels and scores them, and should such a
      score beat the best, it keeps the NaN weights and raises at the end).
    - L-BFGS on a multi-output regression: scikit-learn pairs its loss (averaged over outputs)
      with a gradient whose data term is that of the sum over outputs (n_outputs times too
      large), so its line search works on an inconsistent pair; here L-BFGS minimises that
      same loss with its exact gradient. Single-output regression and classification are
      unaffected (identical).
    - Floating-point rounding: the kernels sum in their own order, so results agree with
      scikit-learn's to ~1e-12 relative per step, not bit for bit.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` on cprop's kernels.

    Multiclass targets train a softmax output with cross-entropy, binary and multilabel targets
    sigmoid outputs with binary cross-entropy (as scikit-learn).
    """

    _is_classifier = True

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, dtype=dtype)

    def _output_layer(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax", "softmax", "cross_entropy"
        return "logistic", "sigmoid", "binary_cross_entropy"

    def _score_function(self, y, y_pred, sample_weight=None):
        return accuracy_score(y, y_pred, sample_weight=sample_weight)

    def _targets_to_labels(self, T):
        return self._label_binarizer.inverse_transform(T)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y (class labels).

        ``sample_weight`` (one weight per row, as scikit-learn's): each minibatch's loss is its
        weighted mean; early stopping splits the weights with the rows and scores the
        validation rows with theirs.

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` (all labels) is required on the first call.
        ``sample_weight`` as in :meth:`fit` (scikit-learn's argument order).

        Returns
        -------
        self : MLPClassifier
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted class labels, shape (n_samples,) (or (n_samples, n_labels) multilabel)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` on cprop's kernels.

    ``loss='squared_error'`` (identity output) or ``'poisson'`` (exponential output, half the
    Poisson deviance, as scikit-learn's: targets must be >= 0, predictions are > 0).
    """

    _is_classifier = False
    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_registry.SKLEARN_REGRESSOR_LOSSES))],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None):
        self.loss = loss
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, dtype=dtype)

    def _output_layer(self):
        if self.loss == "poisson":
            return "exp", "exp", "poisson"
        return "identity", "identity", "squared_error"

    def _loss_scale(self) -> float:
        # scikit-learn's squared loss is averaged over the outputs, its Poisson loss summed
        return 1.0 if self.loss == "poisson" else 1.0 / self.n_outputs_

    def _score_function(self, y, y_pred, sample_weight=None):
        return r2_score(y, y_pred, sample_weight=sample_weight)

    def _targets_to_labels(self, T):
        return T[:, 0] if T.shape[1] == 1 else T

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.size(y) and np.min(y) < 0:
            row = int(np.argmin(y if y.ndim == 1 else y.min(axis=1)))
            raise ValueError(f"y: loss='poisson' needs targets >= 0 (counts or rates), got "
                             f"{np.min(y):g} at row {row}")
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        ``sample_weight`` (one weight per row, as scikit-learn's): each minibatch's loss is its
        weighted mean; early stopping splits the weights with the rows and scores the
        validation rows with theirs.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state;
        ``sample_weight`` as in :meth:`fit`.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predictions, shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred


# The class docstrings share their Parameters and Notes sections (appended, so that they stay
# real docstrings: a concatenation in the class body would not be one).
MLPClassifier.__doc__ += _PARAMS_DOC + """
    Attributes
    ----------
    classes_, coefs_, intercepts_, loss_, best_loss_, loss_curve_, validation_scores_,
    best_validation_score_, t_, n_iter_, n_layers_, n_outputs_, out_activation_,
    n_features_in_, feature_names_in_
        As scikit-learn's; ``coefs_`` and ``intercepts_`` as described below.
    net_ : cprop.MLP
        The fitted network itself.
""" + _WEIGHTS_DOC + _NOTES_DOC
MLPRegressor.__doc__ += _PARAMS_DOC + """
    Attributes
    ----------
    coefs_, intercepts_, loss_, best_loss_, loss_curve_, validation_scores_,
    best_validation_score_, t_, n_iter_, n_layers_, n_outputs_, out_activation_,
    n_features_in_, feature_names_in_
        As scikit-learn's: ``loss_curve_`` is the mean over samples *and outputs* of
        ``(y - t)**2 / 2`` plus the L2 term (the gradient, as in scikit-learn, is that of the
        sum over outputs). ``coefs_`` and ``intercepts_`` as described below.
    net_ : cprop.MLP
        The fitted network itself.
""" + _WEIGHTS_DOC + _NOTES_DOC


# skl2onnx's to_onnx converts these estimators (and pipelines holding them) once skl2onnx is
# imported, with its own MLP converters; this does not import skl2onnx (see cprop._skl2onnx).
_skl2onnx.register_when_imported(MLPClassifier, MLPRegressor)
