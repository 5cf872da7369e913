# scikit-learn's stochastic epoch loop (BaseMultilayerPerceptron._fit_stochastic) in one nogil
# call: cprop.sklearn's common case (no early stopping, no verbose output, not partial_fit).
#
# Each epoch, as the Python loop in cprop.sklearn does it (and scikit-learn before it):
#   1. SGD momentum: the buffer rescaled when the rate changed (_Solver.epoch_options),
#   2. the shuffle, from the estimator's RandomState (_mt19937.pxd: its exact draws),
#   3. the minibatch steps: train_rows, the one driver (run_steps takes it the same way),
#   4. the reported loss, accumulated_loss / n with accumulated_loss = epoch_loss * scale * n + l2
#      (the same operations in the same order: loss_curve_ is bit-identical),
#   5. t_ += n; the no-improvement rule: loss > best_loss - tol counts, else the count restarts;
#      best_loss = min(best_loss, loss),
#   6. invscaling's rate, lr_init / (t + 1) ** power_t (libm's pow, as Python's float ** does),
#   7. the stopping test: count > n_iter_no_change returns to Python, which runs
#      _Solver.trigger_stopping (adaptive: the rate / 5, then maybe back here).
# It also returns on a refused step (the failure code), on Ctrl-C (KeyboardInterrupt then),
# after max_epochs, and when invscaling's next rate is not a valid
# rate in the dtype (EPOCHS_RATE_HANDOFF: Python then computes it itself, raising what the
# Python loop would). Everything the epochs change lives in SklearnEpochs and in the arrays
# passed, and is written back before an exception propagates, so the caller's bookkeeping holds
# on every exit.
#
# Ctrl-C: the steps poll for signals as train_rows always does (between blocks of rows), on the
# main thread only (poll_signals): elsewhere Python runs no signal handlers, and a poll would
# only wait for the GIL while another thread runs Python. Under a threaded GridSearchCV that
# wait serialised the two fits' training on the other's Python work (the validation and scoring
# around each fit): bench/search.py went from ~83 % to ~77 % of the ideal speed-up with them.
#
# (Included into _mlp.pyx: one extension module.)

from libc.math cimport pow
from libc.stdint cimport uint32_t

from cprop._kernels._mt19937 cimport (
    MT19937State, MT19937_N, mt19937_interval, mt19937_shuffle,
)


cdef enum:
    # Why sklearn_epochs returned besides FIT_OK (max_epochs done) and the FIT_* failures.
    EPOCHS_STALLED_C = 16         # the no-improvement count passed n_iter_no_change
    EPOCHS_RATE_HANDOFF_C = 17    # invscaling's next rate is not > 0 and finite in the dtype

EPOCHS_STALLED = EPOCHS_STALLED_C
EPOCHS_RATE_HANDOFF = EPOCHS_RATE_HANDOFF_C


cdef struct SklearnRules:
    double lr                 # the current rate (invscaling: updated after every epoch)
    double buffer_lr          # the rate the SGD momentum buffer is scaled for
    double lr_init
    double power_t
    double loss_scale         # scikit-learn's reported loss / cprop's (1 / n_outputs or 1)
    double tol
    double n_iter_no_change   # (may be inf)
    double best_loss
    int64_t t
    int64_t no_improvement_count
    bint invscaling
    bint rescale_momentum
    bint shuffle


cdef class SklearnEpochs:
    """The state of scikit-learn's stochastic epoch loop between kernel calls
    (``cprop.mlp.MLP.run_sklearn_epochs``): the current and the momentum buffer's learning
    rates, the rules' constants, ``best_loss``, ``t``, ``no_improvement_count``, the shuffle's
    generator (a replica of a ``numpy.random.RandomState``'s MT19937: :meth:`set_mt19937` /
    :meth:`get_mt19937`), and ``epochs_done`` by the last call. The kernel reads and updates it;
    it is up to date also when the call raised (Ctrl-C).
    """

    cdef public double lr, buffer_lr, lr_init, power_t, loss_scale, tol, n_iter_no_change
    cdef public double best_loss
    cdef public int64_t t, no_improvement_count
    cdef public bint invscaling, rescale_momentum, shuffle
    cdef public Py_ssize_t epochs_done
    cdef MT19937State mt

    def __init__(self):
        self.n_iter_no_change = 10.0
        self.loss_scale = 1.0
        self.best_loss = float("inf")
        self.mt.pos = MT19937_N
        memset(self.mt.key, 0, sizeof(self.mt.key))

    def set_mt19937(self, const uint32_t[::1] key, int pos):
        """The generator's state: ``key`` (624 uint32) and ``pos`` as
        ``RandomState.get_state()`` gives them."""
        if key.shape[0] != MT19937_N or not 0 <= pos <= MT19937_N:
            raise ValueError(f"MT19937 state: expected 624 keys and 0 <= pos <= 624, got "
                             f"{key.shape[0]} keys and pos {pos}")
        memcpy(self.mt.key, &key[0], sizeof(self.mt.key))
        self.mt.pos = pos

    def get_mt19937(self):
        """``(key, pos)``: a copy of the generator's state, for ``RandomState.set_state``."""
        key = np.empty(MT19937_N, dtype=np.uint32)
        cdef uint32_t[::1] k = key
        memcpy(&k[0], self.mt.key, sizeof(self.mt.key))
        return key, self.mt.pos

    def shuffle_in_place(self, Py_ssize_t[::1] x):
        """``RandomState.shuffle(x)``'s permutation of the 1-d index array ``x``, drawn from
        this generator (the kernel's shuffle, exposed for the tests)."""
        if x.shape[0] > 1:
            with nogil:
                mt19937_shuffle(&self.mt, &x[0], x.shape[0])

    def interval(self, uint64_t max_value):
        """One draw of numpy's ``random_interval(max_value)``, uniform in [0, max_value], from
        this generator (exposed for the tests: its 64-bit branch, which no shuffle of an array
        that fits in memory reaches, is checked against ``RandomState.randint``)."""
        return mt19937_interval(&self.mt, max_value)

    cdef SklearnRules rules(self):
        cdef SklearnRules r
        r.lr = self.lr
        r.buffer_lr = self.buffer_lr
        r.lr_init = self.lr_init
        r.power_t = self.power_t
        r.loss_scale = self.loss_scale
        r.tol = self.tol
        r.n_iter_no_change = self.n_iter_no_change
        r.best_loss = self.best_loss
        r.t = self.t
        r.no_improvement_count = self.no_improvement_count
        r.invscaling = self.invscaling
        r.rescale_momentum = self.rescale_momentum
        r.shuffle = self.shuffle
        return r

    cdef void keep(self, const SklearnRules* r, Py_ssize_t done) noexcept:
        # What the epochs changed.
        self.lr = r.lr
        self.buffer_lr = r.buffer_lr
        self.best_loss = r.best_loss
        self.t = r.t
        self.no_improvement_count = r.no_improvement_count
        self.epochs_done = done


cdef inline bint rate_in_range(double lr, bint is_float) noexcept nogil:
    # check_learning_rate's test: finite and > 0, also once rounded to the network's dtype.
    if not (isfinite(lr) and lr > 0):
        return False
    return not is_float or (isfinite(<float>lr) and <float>lr > 0)


cdef int sklearn_epochs(
    const Layout* lay, const OptConfig* opt, floating* params, const floating* X,
    const floating* T, const floating* sw, Py_ssize_t n, Py_ssize_t batch_size,
    Py_ssize_t* order, MT19937State* mt, SklearnRules* rules, Py_ssize_t max_epochs,
    floating* grad, floating* A, floating* D, Py_ssize_t chunk, floating* state,
    Py_ssize_t state_len, int64_t* step_count, double* losses, double* batch_loss,
    Py_ssize_t* epochs_done, ThreadTeam* team,
) noexcept nogil:
    # Up to max_epochs epochs over the n positions of `order` (the rows in scikit-learn's
    # current order, reshuffled in place each epoch when rules.shuffle), steps 1-7 of the
    # comment at the top; losses[e] gets epoch e's reported loss, *epochs_done counts the epochs
    # completed (their bookkeeping included). Returns FIT_OK, a failure of train_rows (batch_loss
    # holds the refused step's loss; that epoch is not counted), FIT_INTERRUPTED,
    # EPOCHS_STALLED or EPOCHS_RATE_HANDOFF (after the epoch's bookkeeping; the rate unchanged).
    cdef Py_ssize_t e, k
    cdef Py_ssize_t work = 0
    cdef double total, p_bound, l2, epoch_loss, accumulated, loss, next_lr
    cdef floating ratio
    cdef int failure
    epochs_done[0] = 0
    for e in range(max_epochs):
        if rules.rescale_momentum and rules.lr != rules.buffer_lr:
            # keep scikit-learn's velocity (-lr * buffer) across a change of the rate; as
            # numpy's `state *= buffer_lr / lr` (float32 state: the ratio rounded to float32)
            ratio = <floating>(rules.buffer_lr / rules.lr)
            for k in range(state_len):
                state[k] = state[k] * ratio
            rules.buffer_lr = rules.lr
        if rules.shuffle:
            mt19937_shuffle(mt, order, n)
        total = 0.0
        p_bound = -1.0
        l2 = 0.0
        failure = train_rows(lay, opt, params, X, T, sw, order, not rules.shuffle, n, batch_size,
                             rules.lr, grad, A, D, chunk, state, step_count, &total, batch_loss,
                             &p_bound, &l2, &work, team, NULL)
        if failure != FIT_OK:
            return failure
        epoch_loss = total / <double>n                              # run_steps' epoch_loss
        accumulated = epoch_loss * rules.loss_scale * <double>n + l2  # _run_epoch's
        loss = accumulated / <double>n                              # loss_curve_'s
        rules.t += n
        if loss > rules.best_loss - rules.tol:
            rules.no_improvement_count += 1
        else:
            rules.no_improvement_count = 0
        if loss < rules.best_loss:
            rules.best_loss = loss
        losses[e] = loss
        epochs_done[0] = e + 1
        if rules.invscaling:
            next_lr = rules.lr_init / pow(<double>(rules.t + 1), rules.power_t)
            if not rate_in_range(next_lr, floating is float):
                return EPOCHS_RATE_HANDOFF_C
            rules.lr = next_lr
        if rules.no_improvement_count > rules.n_iter_no_change:
            return EPOCHS_STALLED_C
    return FIT_OK


def run_sklearn_epochs(
    Plan plan, floating[::1] params, const floating[:, ::1] X, const floating[:, ::1] T,
    Py_ssize_t batch_size, options, bint train_biases, floating[::1] state,
    int64_t[::1] step_count, Py_ssize_t[::1] order, floating[::1] grad, floating[::1] A,
    floating[::1] D, double[::1] losses, SklearnEpochs loop,
    const floating[::1] sample_weight=None, Team team=None,
):
    """Up to ``len(losses)`` epochs of scikit-learn's stochastic loop (see the top of
    ``_sklearn_epochs.pxi``) in one nogil call, with scikit-learn's L2 and Adam epsilon.

    ``order``: positions to visit (every index checked by the caller to be a row of X),
    reshuffled in place each epoch if ``loop.shuffle``; ``losses[e]`` gets epoch e's reported
    loss; ``loop`` is read and updated (also when KeyboardInterrupt comes out). Ctrl-C is polled
    for in the main thread only (the only one where Python runs signal handlers). Returns
    ``(status, batch_loss)``: status FIT_OK (every epoch run), a failure code (the refused
    step's loss in batch_loss), ``EPOCHS_STALLED`` or ``EPOCHS_RATE_HANDOFF``.
    """
    cdef Py_ssize_t chunk = A.shape[0] // plan.total_width
    cdef Py_ssize_t n = order.shape[0], done = 0
    cdef ThreadTeam* threads = NULL
    cdef double batch_loss = 0.0
    cdef int status
    cdef OptConfig opt = make_opt_config(options, train_biases, True)
    cdef SklearnRules rules = loop.rules()
    cdef floating* state_ptr = state_pointer(state)
    cdef const floating* sw = weights_pointer(sample_weight, X.shape[0])
    if n < 1 or losses.shape[0] < 1:
        raise ValueError("order and losses must not be empty")
    plan.check_grad(grad.shape[0], min(batch_size, n))
    if team is not None:
        threads = team.for_call(plan, chunk, floating is double)
    with nogil:
        status = sklearn_epochs(&plan.lay, &opt, &params[0], &X[0, 0], &T[0, 0], sw, n,
                                batch_size, &order[0], &loop.mt, &rules, losses.shape[0],
                                &grad[0], &A[0], &D[0], chunk, state_ptr, state.shape[0],
                                &step_count[0], &losses[0], &batch_loss, &done, threads)
    loop.keep(&rules, done)
    if status == FIT_INTERRUPTED:
        raise_interrupt()
    return status, batch_loss
