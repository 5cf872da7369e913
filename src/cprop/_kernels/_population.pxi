# Populations, the "lanes" route: many networks of one architecture trained by single-row SGD on
# the same rows in one nogil call, the networks of a block in the lanes of SIMD vectors
# (_population.h says how). Included into _mlp.pyx (one extension module).
#
# population_sgd_fit checks every argument (dtypes, C-contiguity, shapes, finiteness, codes and
# their pairings) before the kernel runs; the kernel trusts them.

from operator import index as operator_index

import numpy as np

cdef extern from "_population.h" nogil:
    ctypedef struct cprop_pop_net:
        Py_ssize_t n_layers, n_params, n_units
        const Py_ssize_t* sizes
        const Py_ssize_t* w_off
        const Py_ssize_t* b_off
        const Py_ssize_t* u_off
        const int* act
        int loss, train_biases
        double slope
    void cprop_pop_train_block_d(int isa, const cprop_pop_net* net, double* P0, double* work,
                                 double* dwork, const double* X, const double* Tg,
                                 Py_ssize_t n_rows, Py_ssize_t epochs, const double* lr,
                                 double* losses, int* status)
    void cprop_pop_train_block_f(int isa, const cprop_pop_net* net, float* P0, float* work,
                                 double* dwork, const float* X, const float* Tg,
                                 Py_ssize_t n_rows, Py_ssize_t epochs, const float* lr,
                                 double* losses, int* status)
    int cprop_pop_block_d(int isa)
    int cprop_pop_block_f(int isa)
    Py_ssize_t cprop_pop_work(Py_ssize_t n_params, Py_ssize_t n_units, Py_ssize_t n_out,
                              Py_ssize_t B)
    void cprop_lanes_init()
    int cprop_lanes_set(int isa)
    int cprop_lanes_parse(const char* name)
    const char* cprop_lanes_isa_name(int isa)
    int cprop_lanes_isa
    int cprop_lanes_best


cprop_lanes_init()  # the population kernel's instruction set: the best, capped by CPROP_ISA

# The instruction sets of the population kernel, lowest first (x86-64 / aarch64 builds).
POPULATION_ISAS = ("scalar", "sse2", "avx2", "avx512", "neon")


def population_isa():
    """The instruction set the population kernel uses now (``POPULATION_ISAS``): the best this
    CPU has, or the one ``CPROP_ISA`` named at import if the CPU has it."""
    return cprop_lanes_isa_name(cprop_lanes_isa).decode("ascii")


def population_isas():
    """Every instruction set the population kernel can run on this machine, lowest first."""
    names = [cprop_lanes_isa_name(i).decode("ascii") for i in range(cprop_lanes_best + 1)]
    if cprop_lanes_best == 4:  # aarch64: scalar and NEON
        names = ["scalar", "neon"]
    return tuple(names)


def set_population_isa(name):
    """Run the population kernel on ``name`` (one of :func:`population_isas`) from now on, and
    return the set it used before; for tests and benchmarks (every set gives the same bits)."""
    if not isinstance(name, str) or name not in population_isas():
        raise ValueError(f"name: expected one of {population_isas()}, got {name!r}")
    before = population_isa()
    cprop_lanes_set(cprop_lanes_parse(name.encode("ascii")))
    return before


def population_block(dtype):
    """Networks per kernel block (one per SIMD lane of four vectors) for ``dtype`` on the
    current instruction set."""
    return (cprop_pop_block_d(cprop_lanes_isa) if np.dtype(dtype) == np.float64
            else cprop_pop_block_f(cprop_lanes_isa))


_HIDDEN_CODES = (ACT_IDENTITY, ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_LEAKY_RELU)
# loss -> the output activations it pairs with (MLP's pairings, cprop._registry.LOSS_OUTPUT)
_POP_OUTPUTS = {
    LOSS_SQUARED_ERROR: (ACT_SIGMOID, ACT_SOFTMAX, ACT_IDENTITY, ACT_EXP),
    LOSS_CROSS_ENTROPY: (ACT_SOFTMAX,),
    LOSS_BINARY_CROSS_ENTROPY: (ACT_SIGMOID,),
    LOSS_POISSON: (ACT_EXP,),
}


def _pop_array(value, str name, dtype, Py_ssize_t ndim, tuple shape, bint writable=False,
               bint finite=True):
    # `value` as it must reach the kernel: an ndarray of `dtype`, `ndim` dimensions, `shape`
    # (None: any), C-contiguous, writable if asked, every value finite if asked.
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(value).__name__}")
    if value.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype).name}, got {value.dtype}")
    if value.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {value.shape}")
    for k, size in enumerate(shape):
        if size is not None and value.shape[k] != size:
            raise ValueError(f"{name}: expected shape "
                             f"{tuple('any' if s is None else s for s in shape)}, got "
                             f"{value.shape}")
    if not value.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if writable and not value.flags.writeable:
        raise ValueError(f"{name}: expected a writable array")
    if finite and not np.isfinite(value).all():
        raise ValueError(f"{name}: every value must be finite")
    return value


def population_sgd_fit(params, layer_sizes, activations, loss, X, T, lr, epochs, train_biases,
                       negative_slope, losses):
    """Train ``n_nets`` networks of one architecture by single-row SGD, in place.

    Net i (row i of ``params``, the flat layout of :class:`cprop.MLP`) ends exactly where
    ``MLP.fit(X, T, epochs=epochs, lr=lr[i], batch_size=1, shuffle=False, optimizer="sgd")``
    from the same start ends. ``activations``: one code per weight layer (``ACTIVATION_CODES``),
    ``loss``: a ``LOSS_CODES`` code. ``losses`` (n_nets, epochs) float64 gets each net's epoch
    losses (MLP.fit's history). Returns an int32 array (n_nets,): 0, or e + 1 when a step of
    epoch e (0-based) was refused (its loss or an updated value not finite): that net keeps the
    parameters of its last applied step, and ``losses[i, e:]`` are NaN (MLP.fit raises there,
    its history holding epochs 0 .. e-1). The training loop runs without the GIL.
    """
    cdef Py_ssize_t L, l, n_nets, n_params, n_rows, n_epochs
    if not isinstance(params, np.ndarray):
        raise TypeError(f"params: expected a numpy.ndarray, got {type(params).__name__}")
    if params.dtype != np.float64 and params.dtype != np.float32:
        raise TypeError(f"params: expected dtype float64 or float32, got {params.dtype}")
    dtype = params.dtype
    try:
        sizes = [operator_index(s) for s in layer_sizes]
    except TypeError:
        raise TypeError("layer_sizes: expected a sequence of ints") from None
    L = len(sizes) - 1
    if L < 1 or min(sizes) < 1:
        raise ValueError(f"layer_sizes: expected at least two widths, each >= 1, got {sizes}")
    try:
        acts = [operator_index(a) for a in activations]
    except TypeError:
        raise TypeError("activations: expected a sequence of int activation codes") from None
    if len(acts) != L:
        raise ValueError(f"activations: expected {L} codes (one per weight layer), got "
                         f"{len(acts)}")
    for l in range(L - 1):
        if acts[l] not in _HIDDEN_CODES:
            raise ValueError(f"activations[{l}]: {acts[l]} is not a hidden activation code")
    try:
        loss_code = operator_index(loss)
    except TypeError:
        raise TypeError(f"loss: expected an int loss code, got {type(loss).__name__}") from None
    if loss_code not in _POP_OUTPUTS:
        raise ValueError(f"loss: {loss_code} is not a loss code")
    if acts[L - 1] not in _POP_OUTPUTS[loss_code]:
        raise ValueError(f"activations[{L - 1}]: output activation code {acts[L - 1]} does not "
                         f"pair with loss code {loss_code}")
    if acts[L - 1] == ACT_SOFTMAX and sizes[L] < 2:
        raise ValueError(f"layer_sizes: a softmax output needs at least 2 outputs, got {sizes}")
    n_params = sum(sizes[l] * sizes[l + 1] + sizes[l + 1] for l in range(L))
    if isinstance(epochs, (bool, np.bool_)):
        raise TypeError("epochs: expected an int >= 1, got a bool")
    try:
        n_epochs = operator_index(epochs)
    except TypeError:
        raise TypeError(f"epochs: expected an int >= 1, got {type(epochs).__name__}") from None
    if n_epochs < 1:
        raise ValueError(f"epochs: expected an int >= 1, got {n_epochs}")
    if not isinstance(train_biases, (bool, np.bool_)):
        raise TypeError(f"train_biases: expected a bool, got {type(train_biases).__name__}")
    if isinstance(negative_slope, (bool, np.bool_)) or not isinstance(
            negative_slope, (int, float, np.integer, np.floating)):
        raise TypeError("negative_slope: expected a number >= 0")
    slope = float(negative_slope)
    if not (slope >= 0 and slope < float("inf")):
        raise ValueError(f"negative_slope: expected a finite number >= 0, got {slope!r}")
    _pop_array(params, "params", dtype, 2, (None, n_params), writable=True)
    n_nets = params.shape[0]
    if n_nets < 1:
        raise ValueError("params: expected at least one network (n_nets >= 1)")
    _pop_array(X, "X", dtype, 2, (None, sizes[0]))
    n_rows = X.shape[0]
    if n_rows < 1:
        raise ValueError("X: expected at least one row")
    _pop_array(T, "T", dtype, 2, (n_rows, sizes[L]))
    # the targets each loss takes (as MLP.fit checks them)
    if loss_code in (LOSS_CROSS_ENTROPY, LOSS_BINARY_CROSS_ENTROPY) and not (
            (T >= 0).all() and (T <= 1).all()):
        raise ValueError("T: cross-entropy targets must lie in [0, 1]")
    if loss_code == LOSS_POISSON and not (T >= 0).all():
        raise ValueError("T: poisson targets must be >= 0")
    if loss_code == LOSS_CROSS_ENTROPY and np.abs(T.sum(axis=1, dtype=np.float64) - 1.0).max() > (
            1e-6 if dtype == np.float64 else 1e-5):
        raise ValueError("T: cross_entropy targets must be rows summing to 1")
    _pop_array(lr, "lr", dtype, 1, (n_nets,))
    if not (lr > 0).all():
        raise ValueError("lr: every learning rate must be finite and > 0")
    _pop_array(losses, "losses", np.float64, 2, (n_nets, n_epochs), writable=True,
               finite=False)
    status = np.zeros(n_nets, dtype=np.int32)
    if dtype == np.float64:
        _population_fit[double](params, sizes, acts, loss_code, X, T, lr, n_epochs,
                                train_biases, slope, losses, status)
    else:
        _population_fit[float](params, sizes, acts, loss_code, X, T, lr, n_epochs,
                               train_biases, slope, losses, status)
    return status


cdef int _population_fit(floating[:, ::1] params, list sizes, list acts, int loss,
                         const floating[:, ::1] X, const floating[:, ::1] T,
                         const floating[::1] lr, Py_ssize_t epochs, bint train_biases,
                         double slope, double[:, ::1] losses, int[::1] status) except -1:
    # The checked arguments, block by block of B networks through the lanes kernel. A last
    # block of fewer than B networks fills its other lanes with copies of its first network
    # (trained and discarded).
    cdef Py_ssize_t L = len(sizes) - 1, l, k, q, b0, nb, n_nets = params.shape[0]
    cdef Py_ssize_t n_params = params.shape[1], n_rows = X.shape[0], n_units = 0, n_work
    cdef int isa = cprop_lanes_isa  # once: B and the build must agree
    cdef Py_ssize_t B = cprop_pop_block_d(isa) if floating is double else cprop_pop_block_f(isa)
    cdef cprop_pop_net net
    cdef Py_ssize_t* ints = <Py_ssize_t*>malloc(4 * (L + 1) * sizeof(Py_ssize_t))
    cdef int* act = <int*>malloc(L * sizeof(int))
    cdef int* st = <int*>malloc(B * sizeof(int))
    cdef double* dwork = <double*>malloc(2 * B * sizeof(double))
    cdef double* lane_losses = <double*>malloc(B * epochs * sizeof(double))
    cdef floating* P = NULL
    cdef floating* work = NULL
    cdef floating* lanes_lr = NULL
    try:
        if ints == NULL or act == NULL or st == NULL or dwork == NULL or lane_losses == NULL:
            raise MemoryError()
        net.sizes = ints
        net.w_off = ints + (L + 1)
        net.b_off = ints + 2 * (L + 1)
        net.u_off = ints + 3 * (L + 1)
        k = 0
        ints[3 * (L + 1)] = 0
        for l in range(L + 1):
            ints[l] = sizes[l]
        for l in range(L):
            ints[(L + 1) + l] = k
            k += sizes[l] * sizes[l + 1]
            ints[2 * (L + 1) + l] = k
            k += sizes[l + 1]
            ints[3 * (L + 1) + l + 1] = n_units
            n_units += sizes[l + 1]
            act[l] = acts[l]
        net.n_layers = L
        net.n_params = n_params
        net.n_units = n_units
        net.act = act
        net.loss = loss
        net.train_biases = train_biases
        net.slope = slope
        n_work = cprop_pop_work(n_params, n_units, sizes[L], B)
        P = <floating*>malloc(n_params * B * sizeof(floating))
        work = <floating*>malloc(n_work * sizeof(floating))
        lanes_lr = <floating*>malloc(B * sizeof(floating))
        if P == NULL or work == NULL or lanes_lr == NULL:
            raise MemoryError()
        with nogil:
            b0 = 0
            while b0 < n_nets:
                nb = min(B, n_nets - b0)
                for q in range(B):
                    lanes_lr[q] = lr[b0 + q if q < nb else b0]
                    for k in range(n_params):
                        P[k * B + q] = params[b0 + q if q < nb else b0, k]
                if floating is double:
                    cprop_pop_train_block_d(isa, &net, P, work, dwork, &X[0, 0], &T[0, 0], n_rows,
                                            epochs, lanes_lr, lane_losses, st)
                else:
                    cprop_pop_train_block_f(isa, &net, P, work, dwork, &X[0, 0], &T[0, 0], n_rows,
                                            epochs, lanes_lr, lane_losses, st)
                for q in range(nb):
                    for k in range(n_params):
                        params[b0 + q, k] = P[k * B + q]
                    memcpy(&losses[b0 + q, 0], lane_losses + q * epochs,
                           epochs * sizeof(double))
                    status[b0 + q] = st[q]
                b0 += B
    finally:
        free(ints)
        free(act)
        free(st)
        free(dwork)
        free(lane_losses)
        free(P)
        free(work)
        free(lanes_lr)
    return 0
