"""The training engine: network kernels, the step plan, and one driver for every caller.

Layering (as scikit-learn's ``sklearn/_loss/_loss.pyx.tp``):

(a) ``_activations.pxd``, ``_optimizers.pxd``, ``_random.pxd``: single-value formulas, inline.
(b) ``_layers.pxd``: layer kernels over a block of rows (``dense_forward``, ``output_delta``,
    ``backprop_layer``, ...), inline, so every route below compiles them into its own loops.
(c) Here: network kernels (``forward_rows``, ``batch_gradient``, ``optimizer_step``), the
    routes a training step can take, ``choose_route`` (the step plan), ``train_rows`` (the one
    driver: a run of minibatches, each along its own route) and ``fit_epochs`` (a whole ``fit``,
    epochs, shuffles, batches and steps, in one nogil call); ``sklearn_epochs``
    (``_sklearn_epochs.pxi``) is scikit-learn's epoch loop around the same driver.
(d) ``Plan`` (the layout as C arrays, with ``def`` entry points that ``cprop.mlp`` calls once it
    has checked every argument) and ``Stepper`` (one step per call, for online learning and
    ``MLP.train_step``). Kernels trust their inputs: dtypes, C-contiguity, shapes, finiteness and
    non-emptiness are the Python layer's job (with bounds checks off, that validation is the
    memory safety).

The step plan. ``choose_route`` picks one route per minibatch from the network's shapes, the
dtype, the batch's row count and the optimizer; the first row that applies wins. A route other
than the general one exists only while a benchmark row measures it faster by more than 5 %
(``python bench/run.py``; ``cprop.mlp._DISABLED_ROUTES`` turns routes off to re-measure):

======================================  ==============  ===========================================
condition (the first that holds)        route           why it exists / pinned by
======================================  ==============  ===========================================
1 row, stateless SGD, float64, one      ``tiny2_rows``  W1 seed net ``fit``: 1.8x slower without it
hidden layer, every width <= 4                          / test_parity_tiny_networks, test_step_plan
1 row, stateless SGD                    ``row_sgd``     W2 digits batch 1: 1.8x slower without it
                                                        / test_parity_layer_widths, test_step_plan
stateless SGD, rows <= one block,       ``fused_sgd``   W3 wide: 1.35x slower without it (W2 b. 32:
every layer through gemm                                1.03x) / test_parity_blas, test_step_plan
anything else                           ``general``     the definition / test_parity_training
======================================  ==============  ===========================================

(``python bench/routes.py``, Intel Xeon, 2026-12-05; the test files are under ``tests/``.)

A weighted run (``sample_weight``: ``train_rows`` gets a weight pointer, NULL when unweighted)
takes the general route for every batch: the special routes are unweighted, and a NULL pointer
leaves them, and the unweighted general route, exactly as they were.

Parts and threads (``_team.pxi``): the general route cuts a batch of 128+ rows whose layers all
go through gemm into 2 or 4 fixed parts (``batch_parts``, from the rows and the shapes only), sums
each part's gradient in a slot of its own and adds the slots in part order; a ``Team`` (``fit``'s
``n_threads``) runs the parts, that sum and Adam's unchecked pass on several threads (an Adam
batch as one job with two barriers: ``adam_batch``). Threads never change a result. On W5
(50-100-3, batch 200: 2 parts) the cut costs nothing measurable at one thread (``python
bench/w5.py``).

Every route computes the same step (the fused one differs from the general one only in gemm's
rounding): float64 loop routes are bit-identical to ``cprop.oracle``. A route that cannot prove
its unchecked update safe (``update_is_safe``) checks every new value, or hands the step to the
general route, so a refused step never changes the network.
"""

import threading

from cython cimport floating
from libc.stdint cimport uint64_t, int64_t
from libc.stdlib cimport malloc, free
from libc.math cimport sqrt, isfinite, log, cos, NAN
from libc.string cimport memcpy, memset
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_FromDouble
cimport numpy as cnp

from cprop._kernels._types cimport (
    Layout, OptConfig,
    ACT_IDENTITY, ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_LEAKY_RELU, ACT_SOFTMAX, ACT_EXP,
    LOSS_SQUARED_ERROR, LOSS_CROSS_ENTROPY, LOSS_BINARY_CROSS_ENTROPY, LOSS_POISSON,
    OPT_SGD, OPT_ADAM, OPT_RPROP, OPT_ADAMW,
    INIT_GLOROT_UNIFORM, INIT_GLOROT_NORMAL, INIT_HE_UNIFORM, INIT_HE_NORMAL,
    FIT_OK, FIT_LOSS_NOT_FINITE, FIT_UPDATE_NOT_FINITE, FIT_WEIGHTS_SUM_TO_ZERO,
    Route, ROUTE_GENERAL, ROUTE_ROW_SGD, ROUTE_TINY2_ROWS, ROUTE_FUSED_SGD,
)
from cprop._kernels._layers cimport (
    INTERRUPTED, poll_signals, backprop_layer, load_rows, forward_block, forward_loss_delta,
    divide_by_count, divide_by_weight_sum, abs_max, sum_parts, all_finite_ptr, cprop_dense_init,
    cprop_set_main_thread,
)
from cprop._kernels._optimizers cimport AdamBounds, optimizer_step
from cprop._kernels._routes cimport (
    CPROP_TINY_WIDTH, FUSED_FALLBACK, single_row_sgd_step, tiny2_rows, fused_sgd_applies,
    fused_sgd_batch,
)
from cprop._kernels._random cimport uniform01, shuffle_indices
from cprop._kernels._types cimport sgemm_fn, dgemm_fn
from cprop._kernels._layers cimport cprop_dense_isa


cnp.import_array()
cprop_dense_init()  # picks the row kernels' instruction set (see _simd.h)
# poll_signals' main thread (where Ctrl-C can land)
cprop_set_main_thread(threading.main_thread().ident)

# The module's other concerns, in files of their own: which BLAS (_blas.pxi), one step per call
# (_stepper.pxi: Stepper and the C input checks), many networks at once in SIMD lanes
# (_population.pxi: population_sgd_fit), scikit-learn's epoch loop with its stopping rules and
# RandomState shuffles (_sklearn_epochs.pxi: run_sklearn_epochs), the elementwise helpers behind
# cprop.activations and the checks (_elementwise.pxi), wrappers for the tests (_testing.pxi).
# Included rather than separate extensions: each extension would carry its own copy of
# Cython's memoryview support (~200 KB each).
include "_blas.pxi"
include "_team.pxi"

ACTIVATION_CODES = {
    "identity": ACT_IDENTITY,
    "sigmoid": ACT_SIGMOID,
    "tanh": ACT_TANH,
    "relu": ACT_RELU,
    "leaky_relu": ACT_LEAKY_RELU,
    "softmax": ACT_SOFTMAX,
    "exp": ACT_EXP,
}
LOSS_CODES = {
    "squared_error": LOSS_SQUARED_ERROR,
    "cross_entropy": LOSS_CROSS_ENTROPY,
    "binary_cross_entropy": LOSS_BINARY_CROSS_ENTROPY,
    "poisson": LOSS_POISSON,
}
OPTIMIZER_CODES = {"sgd": OPT_SGD, "adam": OPT_ADAM, "rprop": OPT_RPROP, "adamw": OPT_ADAMW}
INIT_CODES = {
    "glorot_uniform": INIT_GLOROT_UNIFORM,
    "glorot_normal": INIT_GLOROT_NORMAL,
    "he_uniform": INIT_HE_UNIFORM,
    "he_normal": INIT_HE_NORMAL,
}
ROUTES = {"general": ROUTE_GENERAL, "row_sgd": ROUTE_ROW_SGD, "tiny2_rows": ROUTE_TINY2_ROWS,
          "fused_sgd": ROUTE_FUSED_SGD}
_ROUTE_NAMES = {code: name for name, code in ROUTES.items()}

# Why a training step was refused (the step is then not applied); 0 means it was applied.
FAILURE_LOSS = FIT_LOSS_NOT_FINITE
FAILURE_UPDATE = FIT_UPDATE_NOT_FINITE
FAILURE_ZERO_WEIGHT = FIT_WEIGHTS_SUM_TO_ZERO
cdef enum:
    FIT_INTERRUPTED = 4      # a signal handler raised (Ctrl-C): the exception is set

# A layer block with at least this many multiply-adds (rows * n_in * n_out) goes through BLAS
# gemm, smaller ones through the tight loops: gemm's call and packing overhead (~0.3-1 us) only
# pays off from a few thousand multiply-adds (measured in bench/; see bench/README.md).
BLAS_MIN_WORK = 4096

# The kernels process batches in blocks of at most this many rows (MLP sizes its workspaces
# with it), so memory stays bounded whatever the batch size.
cdef Py_ssize_t BLOCK_ROWS_C = 256
BLOCK_ROWS = BLOCK_ROWS_C

# One-row steps of the tiny2 route per call of its C kernel (then a signal poll).
cdef Py_ssize_t TINY_ROWS_PER_CALL = 4096


cdef int raise_interrupt() except -1:
    # Propagate the exception a signal handler left set (see poll_signals).
    return -1


# --------------------------------------------------------------------------------------------
# (c) network kernels
# --------------------------------------------------------------------------------------------

cdef void forward_rows(
    const Layout* lay, const floating* params, const floating* X, Py_ssize_t n,
    floating* out, floating* A, Py_ssize_t chunk, Py_ssize_t* work,
) noexcept nogil:
    # Polls for Ctrl-C between blocks (poll_signals): an interrupted call leaves out unfinished.
    cdef Py_ssize_t start, rows, L = lay.n_layers, n_out = lay.sizes[L]
    start = 0
    while start < n:
        rows = min(chunk, n - start)
        load_rows(lay, X, NULL, start, rows, A)
        forward_block(lay, params, A, A, rows)
        memcpy(out + start * n_out, A + rows * lay.a_off[L], rows * n_out * sizeof(floating))
        start += rows
        if poll_signals(work, rows * lay.n_params):
            return


cdef double weight_sum(const floating* sw, const Py_ssize_t* idx, Py_ssize_t start,
                       Py_ssize_t count) noexcept nogil:
    # The sample weights of rows start .. start+count-1 (through idx if given), added in batch
    # order in double.
    cdef Py_ssize_t r
    cdef double s = 0.0
    for r in range(start, start + count):
        s += <double>sw[idx[r] if idx != NULL else r]
    return s


cdef double rows_gradient(
    const Layout* lay, const floating* params, const floating* X, const floating* T,
    const floating* sw, const Py_ssize_t* idx, Py_ssize_t start, Py_ssize_t count,
    floating* grad, floating* A, floating* D, Py_ssize_t chunk, bint want_grad,
    Py_ssize_t* work, long* abort,
) noexcept nogil:
    # The loss summed over rows start .. start+count-1 (through idx if given; weighted by sw if
    # not NULL) and, if want_grad, grad set to the sum of their gradients. Processed in blocks
    # of `chunk` rows: gradients are sums over samples, so blocks just keep adding, in sample
    # order. Polls for Ctrl-C between blocks (poll_signals; work NULL: no polling), and returns
    # NaN once interrupted or once *abort (a team's leader was interrupted) is set.
    cdef Py_ssize_t l, c0, rows, L = lay.n_layers
    cdef double loss_sum = 0.0
    cdef const floating* x_in
    cdef bint use_blas, bias_summed
    c0 = 0
    while c0 < count:
        rows = min(chunk, count - c0)
        if idx == NULL:  # rows in order: read them in place, no copy
            x_in = X + (start + c0) * lay.sizes[0]
        else:  # shuffled: gathered into A's layer-0 slot, contiguous for every layer
            load_rows(lay, X, idx, start + c0, rows, A)
            x_in = A
        loss_sum = forward_loss_delta(lay, params, x_in, A, D if want_grad else NULL, T, sw,
                                      idx, start + c0, rows, loss_sum)
        if want_grad:
            l = L - 1
            bias_summed = False
            while l >= 0:
                # The first block sets a gemm layer's sums (no clearing pass); a loop layer's
                # start from zeros. A gemm layer above a gemm layer may take the lower one's
                # bias sums in its pass (backprop_layer).
                use_blas = rows * lay.sizes[l] * lay.sizes[l + 1] >= lay.blas_min_work
                if c0 == 0 and not use_blas:
                    memset(grad + lay.w_off[l], 0,
                           (lay.b_off[l] + lay.sizes[l + 1] - lay.w_off[l]) * sizeof(floating))
                bias_summed = backprop_layer(
                    lay, x_in if l == 0 else A + rows * lay.a_off[l],
                    D + rows * lay.a_off[l + 1],
                    params + lay.w_off[l],
                    grad + lay.w_off[l], grad + lay.b_off[l], D + rows * lay.a_off[l],
                    rows, lay.sizes[l], lay.sizes[l + 1],
                    lay.act[l - 1] if l > 0 else ACT_IDENTITY, <floating>lay.slope, l > 0,
                    use_blas, c0 == 0,
                    grad + lay.b_off[l - 1] if l > 0 and use_blas and (
                        rows * lay.sizes[l - 1] * lay.sizes[l] >= lay.blas_min_work) else NULL,
                    bias_summed,
                )
                l -= 1
        c0 += rows
        if poll_signals(work, rows * lay.n_params):
            return NAN  # interrupted: the caller sees *work == INTERRUPTED
        if abort != NULL and CPROP_LOAD_ACQ(abort):
            return NAN
    return loss_sum


cdef double batch_gradient(
    const Layout* lay, const floating* params, const floating* X, const floating* T,
    const floating* sw, double sw_sum, const Py_ssize_t* idx, Py_ssize_t start,
    Py_ssize_t count, floating* grad, floating* A, floating* D, Py_ssize_t chunk,
    bint want_grad, Py_ssize_t* work, ThreadTeam* team, double* grad_max,
) noexcept nogil:
    # Mean loss of rows start .. start+count-1 (through idx if given); if want_grad, grad gets the
    # gradient of that mean loss. Polls for Ctrl-C between blocks (poll_signals; work NULL: no
    # polling).
    # sw (or NULL): sample weights, whose sum over these rows is sw_sum (> 0): the weighted mean
    # sum_r w_r E_r / sw_sum and its gradient (scikit-learn's definition).
    # A batch the plan cuts into parts (batch_parts, for any thread count) is summed part by
    # part, each part's gradient in its own slot of grad, and the parts added in order
    # (parted_gradient, _team.pxi); team (or NULL: this thread alone) runs the parts.
    # grad_max (or NULL; if want_grad) gets max |grad| (NaN if any is NaN) when the last pass
    # (the division) took it, else -1: the update's safety test takes it itself.
    cdef double loss_sum, top
    cdef Py_ssize_t n_parts = batch_parts(lay, count)
    if n_parts > 1:
        return parted_gradient(lay, params, X, T, sw, sw_sum, idx, start, count, n_parts, grad,
                               A, D, chunk, want_grad, work, team, grad_max)
    if want_grad and grad_max != NULL:
        grad_max[0] = -1.0
    loss_sum = rows_gradient(lay, params, X, T, sw, idx, start, count, grad, A, D, chunk,
                             want_grad, work, NULL)
    if work != NULL and work[0] == INTERRUPTED:
        return NAN
    if sw != NULL:
        if want_grad:
            top = divide_by_weight_sum(grad, lay.n_params, sw_sum)
            if grad_max != NULL:
                grad_max[0] = top
        return loss_sum / sw_sum
    if want_grad and count > 1:  # (g / 1 == g: single-sample SGD skips the divisions)
        top = divide_by_count(grad, lay.n_params, count)
        if grad_max != NULL:
            grad_max[0] = top
    return loss_sum / count


# --------------------------------------------------------------------------------------------
# The step plan and the driver
# --------------------------------------------------------------------------------------------

cdef bint tiny_network(const Layout* lay) noexcept nogil:
    # Every layer (inputs included) at most CPROP_TINY_WIDTH wide.
    cdef Py_ssize_t l
    for l in range(lay.n_layers + 1):
        if lay.sizes[l] > CPROP_TINY_WIDTH:
            return False
    return True


cdef inline bint route_on(const Layout* lay, Route route) noexcept nogil:
    return (lay.disabled_routes >> <int>route) & 1 == 0


cdef Route choose_route(const Layout* lay, const OptConfig* opt, Py_ssize_t rows,
                        Py_ssize_t chunk, bint stateless, bint is_double) noexcept nogil:
    # The step plan (the table in the module docstring): the route of one minibatch of `rows`.
    cdef bint plain_sgd = opt.kind == OPT_SGD and stateless
    if plain_sgd and rows == 1:
        if (is_double and lay.n_layers == 2 and tiny_network(lay)
                and route_on(lay, ROUTE_TINY2_ROWS)):
            return ROUTE_TINY2_ROWS
        if route_on(lay, ROUTE_ROW_SGD):
            return ROUTE_ROW_SGD
    if (plain_sgd and rows <= chunk and fused_sgd_applies(lay, rows)
            and route_on(lay, ROUTE_FUSED_SGD)):
        return ROUTE_FUSED_SGD
    return ROUTE_GENERAL


cdef double weights_sum_sq(const Layout* lay, const floating* params) noexcept nogil:
    # ||W||^2 over every weight matrix (not the biases), summed in double, layer after layer.
    cdef Py_ssize_t l, k
    cdef double s = 0.0, layer_sum
    for l in range(lay.n_layers):
        layer_sum = 0.0
        for k in range(lay.w_off[l], lay.b_off[l]):
            layer_sum += <double>params[k] * <double>params[k]
        s += layer_sum
    return s


cdef int train_rows(
    const Layout* lay, const OptConfig* opt, floating* params, const floating* X,
    const floating* T, const floating* sw, const Py_ssize_t* order, bint in_order, Py_ssize_t n,
    Py_ssize_t batch_size, double lr, floating* grad, floating* A, floating* D,
    Py_ssize_t chunk, floating* state, int64_t* step_count, double* total, double* batch_loss,
    double* p_bound, double* l2_total, Py_ssize_t* work, ThreadTeam* team,
    double* row_max,
) noexcept nogil:
    # The one driver: minibatches of `batch_size` rows over positions 0 .. n-1 of `order` (NULL:
    # the rows in order; in_order: order is the identity, so inputs may be read in place), each
    # a step along the route the step plan picks, with the gradient of the batch's mean loss.
    # total gets each batch's mean loss times its rows added. p_bound: an upper bound on
    # max |params| for the unchecked SGD updates (update_is_safe), < 0 when not known (taken
    # exactly when a route needs it). Returns FIT_OK, why a step was refused (batch_loss holds
    # its loss; nothing of it applied), or FIT_INTERRUPTED (Ctrl-C: params hold the last
    # completed step). l2_total (or NULL): gets 1/2 alpha ||W||^2 of the weights before each
    # batch's step added (scikit-learn reports that with each batch's loss).
    # sw (NULL: unweighted): a sample weight per row of X; each batch's step then follows the
    # gradient of its weighted mean loss sum w_i E_i / sum w_i (along the general route), and
    # total gets that weighted mean times the batch's rows (scikit-learn's loss_curve_). A
    # batch whose weights sum to 0 is refused with FIT_WEIGHTS_SUM_TO_ZERO before anything of
    # it is computed. scikit-learn's L2 (l2_per_row) then divides alpha by the weight sum, and
    # l2_total gets 1/2 alpha ||W||^2 times rows / weight sum.
    # team (or NULL): threads for the batches the plan cuts into parts (batch_gradient); grad
    # then has a slot for each part.
    # row_max (or NULL): max |x| of each row of X, kept across calls for the fused SGD step's
    # bound (fused_sgd_batch; -1 where not taken yet).
    cdef Py_ssize_t start = 0, count, end
    cdef Py_ssize_t work_per_sample = lay.n_params + 1
    cdef Route route
    cdef int failure
    cdef double sw_sum = 0.0
    cdef OptConfig per_row
    cdef const OptConfig* opt_all = opt
    cdef AdamJob adam_job
    cdef bint parted_adam, stepped
    cdef Py_ssize_t n_parts
    cdef double grad_max = -1.0
    # (Adam's bounds, carried from step to step: adam_step_is_safe)
    cdef AdamBounds adam_bounds
    adam_bounds.known = False
    # (rows in order: no index, so the general route reads them in place rather than gathering)
    cdef const Py_ssize_t* rows_index = order
    if in_order:
        rows_index = NULL
    if opt.l2_per_row:
        per_row = opt[0]
    while start < n:
        count = min(batch_size, n - start)
        if sw != NULL:
            sw_sum = weight_sum(sw, order, start, count)
            if sw_sum == 0:
                batch_loss[0] = NAN
                return FIT_WEIGHTS_SUM_TO_ZERO
        if l2_total != NULL and opt_all.alpha != 0:
            if sw == NULL:
                l2_total[0] += 0.5 * opt_all.alpha * weights_sum_sq(lay, params)
            else:
                l2_total[0] += (0.5 * opt_all.alpha * weights_sum_sq(lay, params)
                                * (<double>count / sw_sum))
        if opt_all.l2_per_row:
            per_row.alpha = opt_all.alpha / (<double>count if sw == NULL else sw_sum)
            opt = &per_row
        if sw != NULL:
            route = ROUTE_GENERAL  # (the special routes are unweighted)
        else:
            route = choose_route(lay, opt, count, chunk, state == NULL, floating is double)
        if floating is double:
            if route == ROUTE_TINY2_ROWS:
                # A run of one-row batches (up to the next signal poll when batch_size is 1;
                # one at a time when each batch's L2 term is reported).
                end = (start + 1 if batch_size > 1 or l2_total != NULL
                       else min(n, start + TINY_ROWS_PER_CALL))
                failure = tiny2_rows(lay, opt, params, X, T, order, start, end, lr, step_count,
                                     total, batch_loss)
                if failure != FIT_OK:
                    return failure
                p_bound[0] = -1.0  # (this route keeps no bound)
                if poll_signals(work, (end - start) * work_per_sample):
                    return FIT_INTERRUPTED
                start = end
                continue
        if route != ROUTE_GENERAL and p_bound[0] < 0:
            p_bound[0] = abs_max(params, lay.n_params)
        if route == ROUTE_ROW_SGD:
            failure = single_row_sgd_step(lay, opt, params, X, T, order, start, A, D, grad,
                                          <floating>lr, batch_loss, p_bound)
            if failure != FIT_OK:
                return failure
            step_count[0] += 1
            total[0] += batch_loss[0]
            start += 1
            if poll_signals(work, work_per_sample):
                return FIT_INTERRUPTED
            continue
        if route == ROUTE_FUSED_SGD:
            failure = fused_sgd_batch(lay, opt, params, X, T, order, start, count, A, D, grad,
                                      <floating>lr, batch_loss, p_bound, in_order, row_max)
            if failure == FIT_OK:
                step_count[0] += 1
                total[0] += batch_loss[0] * count
                start += count
                if poll_signals(work, count * work_per_sample):
                    return FIT_INTERRUPTED
                continue
            if failure != FUSED_FALLBACK:
                return failure
        # The general route (polls between its blocks of rows, so a large batch is interrupted
        # part-way, before its update: params keep the last completed step).
        # A parted Adam batch runs whole in one meeting of the team (adam_batch), its step
        # included when the carried bounds prove it safe.
        n_parts = batch_parts(lay, count)
        parted_adam = (opt.kind == OPT_ADAM or opt.kind == OPT_ADAMW) and n_parts > 1
        if parted_adam:
            batch_loss[0] = adam_batch(lay, opt, params, X, T, sw, sw_sum, rows_index, start,
                                       count, n_parts, grad, A, D, chunk, state,
                                       step_count, lr, work, team, &adam_bounds, &stepped,
                                       &grad_max)
        else:
            stepped = False
            batch_loss[0] = batch_gradient(lay, params, X, T, sw, sw_sum, rows_index, start,
                                           count, grad, A, D, chunk, True, work, team,
                                           &grad_max)
        if work[0] == INTERRUPTED:
            return FIT_INTERRUPTED
        if not isfinite(batch_loss[0]):
            return FIT_LOSS_NOT_FINITE
        if opt.kind == OPT_SGD and state == NULL and p_bound[0] < 0:
            p_bound[0] = abs_max(params, lay.n_params)
        # (any other step, and an Adam step the carried bounds did not prove safe: with the
        # exact maxima, by the team, else optimizer_step's checked passes, here)
        if not stepped:
            if parted_adam and team != NULL:
                team_adam_prepare(&adam_job, lay, opt, params, grad, state, step_count[0], lr,
                                  team, &adam_bounds)
                stepped = team_adam_step(&adam_job, step_count, team, grad_max)
            if not stepped and not optimizer_step(lay, opt, params, grad, state, step_count,
                                                  lr, p_bound, &adam_bounds, grad_max):
                return FIT_UPDATE_NOT_FINITE
        total[0] += batch_loss[0] * count
        start += count
    return FIT_OK


cdef int fit_epochs(
    const Layout* lay, const OptConfig* opt, floating* params, const floating* X,
    const floating* T, const floating* sw, Py_ssize_t n, const double* lrs, Py_ssize_t epochs,
    Py_ssize_t batch_size, bint shuffle, uint64_t* rng, Py_ssize_t* order, bint given_order,
    floating* grad, floating* A, floating* D, Py_ssize_t chunk, floating* state,
    int64_t* step_count, double* epoch_losses, double* batch_loss, double* l2_total,
    Py_ssize_t* epochs_done, ThreadTeam* team, double* row_max,
) noexcept nogil:
    # `epochs` epochs of MLP.fit in one call: each a fresh shuffle (if `shuffle`) drawn from
    # rng, then train_rows over it at that epoch's rate lrs[e]. epoch_losses[e] gets the mean
    # over samples of the losses computed during the epoch (each batch's mean loss before its
    # update, weighted by its rows). The bound p_bound is taken afresh at each epoch, so that
    # how a fit is cut into calls never changes a result. given_order: the rows are taken in
    # the order given (the first n of `order`), every epoch. sw: sample weights or NULL (see
    # train_rows). Returns as train_rows; *epochs_done counts the epochs completed. row_max (or
    # NULL, else -1 for each row of X): max |x| of each row, taken once for every epoch's fused
    # SGD steps (train_rows).
    cdef Py_ssize_t e, k
    cdef Py_ssize_t work = 0
    cdef double total, p_bound
    cdef int failure
    epochs_done[0] = 0
    if not shuffle and not given_order:
        for k in range(n):
            order[k] = k
    for e in range(epochs):
        if shuffle and not given_order:
            shuffle_indices(order, n, rng)
        total = 0.0
        p_bound = -1.0
        failure = train_rows(lay, opt, params, X, T, sw, order, not (shuffle or given_order), n,
                             batch_size, lrs[e],
                             grad, A, D, chunk, state, step_count, &total, batch_loss, &p_bound,
                             l2_total, &work, team, row_max)
        if failure != FIT_OK:
            return failure
        epoch_losses[e] = total / n
        epochs_done[0] = e + 1
    return FIT_OK


# --------------------------------------------------------------------------------------------
# (d) Python entry points
# --------------------------------------------------------------------------------------------

cdef OptConfig make_opt_config(object options, bint train_biases,
                               bint sklearn_conventions=False) except *:
    # The kernel's option struct, filled by name from a validated
    # cprop.optimizers.OptimizerOptions (and scikit-learn's conventions if asked).
    cdef OptConfig opt
    opt.kind = OPTIMIZER_CODES[options.name]
    opt.momentum = options.momentum
    opt.nesterov = options.nesterov
    opt.beta1 = options.beta1
    opt.beta2 = options.beta2
    opt.eps = options.eps
    opt.alpha = options.alpha
    opt.eta_minus, opt.eta_plus = options.rprop_etas
    opt.step_min, opt.step_max = options.rprop_step_sizes
    opt.train_biases = train_biases
    opt.l2_per_row = sklearn_conventions
    opt.adam_eps_unscaled = sklearn_conventions
    return opt


cdef inline floating* state_pointer(floating[::1] state) noexcept:
    return &state[0] if state.shape[0] > 0 else NULL


cdef inline const floating* weights_pointer(const floating[::1] sw, Py_ssize_t rows) except? NULL:
    # The sample weights' data (a memoryview of the network's dtype, or None: NULL), after the
    # one check the kernels need: a weight for each of the `rows` rows. Everything else about
    # them (finite, >= 0, not all 0) is cprop.mlp's to check.
    if sw is None:
        return NULL
    if sw.shape[0] != rows:
        raise ValueError(f"sample_weight: expected {rows} weights, got {sw.shape[0]}")
    return &sw[0]


cdef class Plan:
    """The C-level layout of one network (widths, parameter offsets, activation codes).

    Built once per :class:`cprop.MLP`; its methods take the network's flat ``params`` buffer and
    preallocated outputs/workspaces, all already validated by :mod:`cprop.mlp`. A workspace for
    blocks of ``rows`` samples holds ``rows * total_width`` values.
    """

    cdef Layout lay
    cdef Py_ssize_t* _ints
    cdef int* _acts
    cdef readonly Py_ssize_t n_params
    cdef readonly Py_ssize_t total_width

    def __cinit__(self, sizes, activations, int loss, double slope=0.01,
                  Py_ssize_t blas_min_work=BLAS_MIN_WORK, disabled_routes=()):
        cdef Py_ssize_t L = len(sizes) - 1, l, offset
        if L < 1 or len(activations) != L:
            raise ValueError("Plan needs len(sizes) >= 2 and one activation per layer")
        self._ints = <Py_ssize_t*>malloc((4 * L + 5) * sizeof(Py_ssize_t))
        self._acts = <int*>malloc(L * sizeof(int))
        if self._ints == NULL or self._acts == NULL:
            raise MemoryError()
        self.lay.n_layers = L
        self.lay.sizes = self._ints
        self.lay.w_off = self._ints + (L + 1)
        self.lay.b_off = self._ints + (2 * L + 1)
        self.lay.a_off = self._ints + (3 * L + 1)
        self.lay.act = self._acts
        self.lay.loss = loss
        self.lay.slope = slope
        self.lay.sgemm = sgemm
        self.lay.dgemm = dgemm
        self.lay.disabled_routes = 0
        for name in disabled_routes:
            self.lay.disabled_routes |= 1 << <int>ROUTES[name]
        # BLAS takes int dimensions: layers wider than that stay on the loops.
        self.lay.blas_min_work = blas_min_work
        for l in range(L + 1):
            if sizes[l] >= 2**31 - 1:
                self.lay.blas_min_work = PY_SSIZE_T_MAX
        for l in range(L + 1):
            self.lay.sizes[l] = sizes[l]
        offset = 0
        self.lay.a_off[0] = 0
        for l in range(L):
            self.lay.w_off[l] = offset
            offset += sizes[l] * sizes[l + 1]
            self.lay.b_off[l] = offset
            offset += sizes[l + 1]
            self.lay.act[l] = activations[l]
            self.lay.a_off[l + 1] = self.lay.a_off[l] + sizes[l]
        self.lay.a_off[L + 1] = self.lay.a_off[L] + sizes[L]       # output logits
        self.lay.a_off[L + 2] = self.lay.a_off[L + 1] + sizes[L]   # log-sum-exp of the logits
        self.lay.a_off[L + 3] = self.lay.a_off[L + 2] + 1          # total width
        self.lay.n_params = offset
        self.n_params = offset
        self.total_width = self.lay.a_off[L + 3]

    def __dealloc__(self):
        free(self._ints)
        free(self._acts)

    def init_params(self, int kind, floating[::1] params, uint64_t[::1] rng):
        """Random initial weights, layer by layer, row by row; zero biases.

        glorot_uniform (2u - 1) sqrt(6 / (n_in + n_out)); he_uniform (2u - 1) sqrt(6 / n_in);
        glorot_normal N(0, 2 / (n_in + n_out)); he_normal N(0, 2 / n_in). A normal draw is
        sqrt(-2 log(1 - u1)) cos(2 pi u2) (Box-Muller, two uniforms per weight; 1 - u1 > 0).
        """
        cdef Py_ssize_t l, k, n_in, n_out
        cdef double scale, u1, u2, value
        with nogil:
            for l in range(self.lay.n_layers):
                n_in = self.lay.sizes[l]
                n_out = self.lay.sizes[l + 1]
                if kind == INIT_GLOROT_UNIFORM:
                    scale = sqrt(6.0 / <double>(n_in + n_out))
                elif kind == INIT_HE_UNIFORM:
                    scale = sqrt(6.0 / <double>n_in)
                elif kind == INIT_GLOROT_NORMAL:
                    scale = sqrt(2.0 / <double>(n_in + n_out))
                else:
                    scale = sqrt(2.0 / <double>n_in)
                for k in range(n_in * n_out):
                    if kind == INIT_GLOROT_UNIFORM or kind == INIT_HE_UNIFORM:
                        value = (2.0 * uniform01(&rng[0]) - 1.0) * scale
                    else:
                        u1 = uniform01(&rng[0])
                        u2 = uniform01(&rng[0])
                        value = sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2) * scale
                    params[self.lay.w_off[l] + k] = <floating>value
                for k in range(n_out):
                    params[self.lay.b_off[l] + k] = 0

    def forward(self, const floating[::1] params, const floating[:, ::1] X,
                floating[:, ::1] out, floating[::1] A):
        """out <- network(X); A is a workspace of chunk * total_width values."""
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef Py_ssize_t work = 0
        with nogil:
            forward_rows(&self.lay, &params[0], &X[0, 0], X.shape[0], &out[0, 0], &A[0], chunk,
                         &work)
        if work == INTERRUPTED:
            raise_interrupt()

    def loss(self, const floating[::1] params, const floating[:, ::1] X,
             const floating[:, ::1] T, floating[::1] A, const floating[::1] sample_weight=None):
        """The mean over samples of the per-sample loss (weighted by ``sample_weight``)."""
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef double result, sw_sum = 0.0
        cdef Py_ssize_t work = 0
        cdef const floating* sw = weights_pointer(sample_weight, X.shape[0])
        if sw != NULL:
            sw_sum = weight_sum(sw, NULL, 0, X.shape[0])
            if not sw_sum > 0:
                raise ValueError("sample_weight: the weights sum to 0")
        with nogil:
            result = batch_gradient(&self.lay, &params[0], &X[0, 0], &T[0, 0], sw, sw_sum, NULL,
                                    0, X.shape[0], NULL, &A[0], NULL, chunk, False, &work, NULL,
                                    NULL)
        if work == INTERRUPTED:
            raise_interrupt()
        return result

    def gradient(self, const floating[::1] params, const floating[:, ::1] X,
                 const floating[:, ::1] T, floating[::1] grad, floating[::1] A, floating[::1] D,
                 const floating[::1] sample_weight=None):
        """grad <- gradient of the mean loss over X (weighted by ``sample_weight``); returns that
        mean loss.

        With a workspace of one chunk covering all rows, A and D afterwards hold every layer's
        activations and deltas (what ``MLP.explain`` reads).
        """
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef double result, sw_sum = 0.0
        cdef Py_ssize_t work = 0
        cdef const floating* sw = weights_pointer(sample_weight, X.shape[0])
        self.check_grad(grad.shape[0], X.shape[0])
        if sw != NULL:
            sw_sum = weight_sum(sw, NULL, 0, X.shape[0])
            if not sw_sum > 0:
                raise ValueError("sample_weight: the weights sum to 0")
        with nogil:
            result = batch_gradient(&self.lay, &params[0], &X[0, 0], &T[0, 0], sw, sw_sum, NULL,
                                    0, X.shape[0], &grad[0], &A[0], &D[0], chunk, True, &work,
                                    NULL, NULL)
        if work == INTERRUPTED:
            raise_interrupt()
        return result

    def parts(self, Py_ssize_t rows):
        """How many parts a batch of ``rows`` rows is cut into (1: whole); see _team.pxi."""
        return batch_parts(&self.lay, rows)

    def grad_slots(self, Py_ssize_t rows):
        """The gradient slots (of ``n_params`` values each) a workspace for batches of up to
        ``rows`` rows needs: one per part of the largest such batch."""
        return batch_parts(&self.lay, max(rows, 1))

    def check_grad(self, Py_ssize_t size, Py_ssize_t rows):
        """Raise ValueError unless a grad buffer of ``size`` values holds ``grad_slots(rows)``
        slots (the kernels write that many; with bounds checks off this is what keeps them in
        bounds)."""
        cdef Py_ssize_t need = batch_parts(&self.lay, max(rows, 1)) * self.n_params
        if size < need:
            raise ValueError(f"grad: expected at least {need} values ({need // self.n_params} "
                             f"slot(s) of {self.n_params}) for batches of {rows} rows, "
                             f"got {size}")

    def route(self, Py_ssize_t rows, options, bint stateless, bint is_double,
              Py_ssize_t chunk=BLOCK_ROWS):
        """The name of the route the step plan picks for a minibatch of ``rows`` rows."""
        cdef OptConfig opt = make_opt_config(options, True)
        return _ROUTE_NAMES[choose_route(&self.lay, &opt, rows, chunk, stateless, is_double)]

    def train_step(self, floating[::1] params, const floating[:, ::1] X,
                   const floating[:, ::1] T, double lr, options, bint train_biases,
                   floating[::1] state, int64_t[::1] step_count,
                   floating[::1] grad, floating[::1] A, floating[::1] D,
                   const floating[::1] sample_weight=None):
        """One optimizer step on the batch (X, T), along the route the step plan picks
        (weighted by ``sample_weight``: the general route).

        Returns (mean loss before the step, failure code); a failed step is not applied.
        """
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef OptConfig opt = make_opt_config(options, train_biases)
        cdef floating* state_ptr = state_pointer(state)
        cdef Py_ssize_t work = 0, rows = X.shape[0]
        cdef double total = 0.0, loss = 0.0, p_bound = -1.0
        cdef int failure
        cdef const floating* sw = weights_pointer(sample_weight, rows)
        self.check_grad(grad.shape[0], rows)
        with nogil:
            failure = train_rows(&self.lay, &opt, &params[0], &X[0, 0], &T[0, 0], sw, NULL, True,
                                 rows, rows, lr, &grad[0], &A[0], &D[0], chunk, state_ptr,
                                 &step_count[0], &total, &loss, &p_bound, NULL, &work, NULL,
                                 NULL)
        if failure == FIT_INTERRUPTED:
            raise_interrupt()
        return loss, failure  # (one batch: its mean loss, before the step)

    def fit(self, floating[::1] params, const floating[:, ::1] X, const floating[:, ::1] T,
            const double[::1] lrs, Py_ssize_t batch_size, bint shuffle, uint64_t[::1] rng,
            options, bint train_biases, floating[::1] state, int64_t[::1] step_count,
            Py_ssize_t[::1] order, floating[::1] grad, floating[::1] A, floating[::1] D,
            double[::1] epoch_losses, bint sklearn_conventions=False, bint given_order=False,
            const floating[::1] sample_weight=None, Team team=None):
        """``len(lrs)`` epochs of minibatch training (epoch e at rate lrs[e]) in one nogil call.

        Returns (failure code, epochs completed, the last batch loss computed, the sum over
        batches of 1/2 alpha ||W||^2 before each step if ``sklearn_conventions``, else 0);
        epoch_losses[e] gets epoch e's loss. Ctrl-C raises KeyboardInterrupt between two steps.
        ``sklearn_conventions``: scikit-learn's L2 and Adam epsilon (see OptConfig).
        ``given_order``: the epochs visit the rows ``order`` lists (every index checked by the
        caller to be a row of X), in that order, instead of all rows in order or shuffled.
        ``sample_weight``: one weight per row of X (checked by the caller: finite, >= 0), or
        None; each batch's step follows its weighted mean loss (see ``train_rows``); a batch
        whose weights sum to 0 returns ``FAILURE_ZERO_WEIGHT``.
        ``team``: a started :class:`Team` (built for this workspace) whose threads share the
        batches cut into parts; the result is the same bits without it. grad holds
        ``grad_slots(batch_size)`` slots.
        """
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef Py_ssize_t done = 0
        cdef ThreadTeam* threads = NULL
        cdef double batch_loss = 0.0, l2_total = 0.0
        cdef int failure
        cdef OptConfig opt = make_opt_config(options, train_biases, sklearn_conventions)
        cdef floating* state_ptr = state_pointer(state)
        cdef Py_ssize_t n = order.shape[0] if given_order else X.shape[0]
        cdef const floating* sw = weights_pointer(sample_weight, X.shape[0])
        cdef double[::1] row_max
        cdef double* row_max_ptr = NULL
        if epoch_losses.shape[0] < lrs.shape[0]:
            raise ValueError("epoch_losses is shorter than lrs")
        if order.shape[0] < n or n < 1:
            raise ValueError("order must have a position for every row")
        self.check_grad(grad.shape[0], min(batch_size, n))
        if team is not None:
            threads = team.for_call(self, chunk, floating is double)
        # The fused SGD step's bound reads max |x| of each input row: kept for a fit of
        # several epochs rather than taken again every epoch.
        if (state_ptr == NULL and opt.kind == OPT_SGD and sw == NULL and lrs.shape[0] > 1
                and route_on(&self.lay, ROUTE_FUSED_SGD)
                and fused_sgd_applies(&self.lay, min(batch_size, n))):
            row_max = np.full(X.shape[0], -1.0)
            row_max_ptr = &row_max[0]
        with nogil:
            failure = fit_epochs(&self.lay, &opt, &params[0], &X[0, 0], &T[0, 0], sw, n,
                                 &lrs[0], lrs.shape[0], batch_size, shuffle, &rng[0], &order[0],
                                 given_order, &grad[0], &A[0], &D[0], chunk, state_ptr,
                                 &step_count[0],
                                 &epoch_losses[0], &batch_loss,
                                 &l2_total if sklearn_conventions else NULL, &done, threads,
                                 row_max_ptr)
        if failure == FIT_INTERRUPTED:
            raise_interrupt()
        return failure, done, batch_loss, l2_total


include "_stepper.pxi"
include "_population.pxi"
include "_sklearn_epochs.pxi"


include "_elementwise.pxi"
include "_testing.pxi"
