"""Multilayer-perceptron kernels: forward pass, backpropagation, SGD, whole training epochs.

Design (the layering of scikit-learn's ``sklearn/_loss/_loss.pyx.tp``):

(a) ``_activations.pxd`` / ``_random.pxd``: single-value C functions, inline, nogil.
(b) Layer kernels, nogil noexcept, over a block of ``rows`` samples stored row-major:
    ``dense_forward``       z = a_in @ W + b, then the activation, in place;
    ``output_delta``        the loss of each sample and delta = dE/dz at the output layer;
    ``backprop_layer``      adds this block's dE/dW and dE/db, and the delta of the layer below.
(c) Network kernels chaining them: ``forward_rows``, ``batch_gradient`` (mean gradient of the
    batch, in blocks of at most ``chunk`` rows so memory stays bounded), ``sgd_update`` and
    ``train_epochs``, the whole minibatch loop of ``MLP.fit`` without the GIL.
(d) ``Plan``: the layout as C arrays plus thin ``def`` methods that ``cprop.mlp`` calls once it
    has checked every argument. Kernels trust their inputs: dtypes, C-contiguity, shapes,
    finiteness and non-emptiness are the Python layer's job (with bounds checks off, that
    validation is the memory safety).

Arithmetic order matters: ``cprop.oracle`` performs the same additions in the same order (bias
first, then inputs in index order; samples in batch order, then one division by the count), so
float64 results agree to the last bit or two.
"""

from cython cimport floating
from libc.stdint cimport uint64_t
from libc.stdlib cimport malloc, free
from libc.math cimport sqrt, isfinite
from libc.string cimport memcpy, memset

from cpython.exc cimport PyErr_CheckSignals

from cprop._kernels._types cimport (
    Layout, ACT_IDENTITY, ACT_SIGMOID, ACT_TANH, ACT_RELU, LOSS_SQUARED_ERROR,
    FIT_OK, FIT_LOSS_NOT_FINITE, FIT_UPDATE_NOT_FINITE,
)
from cprop._kernels._activations cimport (
    activation, activation_derivative, activate_inplace,
)
from cprop._kernels._random cimport uniform01, shuffle_indices


ACTIVATION_CODES = {
    "identity": ACT_IDENTITY,
    "sigmoid": ACT_SIGMOID,
    "tanh": ACT_TANH,
    "relu": ACT_RELU,
}
LOSS_CODES = {"squared_error": LOSS_SQUARED_ERROR}
# Why a training step was refused (see train_epochs); 0 means it was applied.
FAILURE_LOSS = FIT_LOSS_NOT_FINITE
FAILURE_UPDATE = FIT_UPDATE_NOT_FINITE

# How many multiply-adds of training work may pass between two checks for Ctrl-C. A check takes
# the GIL (~0.1 us); 2**17 multiply-adds take ~50-100 us, so checks cost < 0.5% and an interrupt
# is seen at the first batch boundary after at most ~0.1 ms of work.
cdef Py_ssize_t SIGNAL_CHECK_WORK = 1 << 17


# --------------------------------------------------------------------------------------------
# (b) layer kernels
# --------------------------------------------------------------------------------------------

cdef inline void dense_forward(
    const floating* a_in,    # IN  (rows, n_in)
    const floating* W,       # IN  (n_in, n_out)
    const floating* b,       # IN  (n_out,)
    floating* a_out,         # OUT (rows, n_out): z, then f(z) in place
    Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out, int act,
) noexcept nogil:
    cdef Py_ssize_t r, i, j
    cdef floating a_i
    cdef floating* z
    cdef const floating* w_row
    for r in range(rows):
        z = a_out + r * n_out
        for j in range(n_out):
            z[j] = b[j]
        # i-j order: the inner loop runs along a row of W (contiguous, vectorisable), and each
        # z[j] still receives its terms in input order i = 0, 1, ..., as the oracle adds them.
        for i in range(n_in):
            a_i = a_in[r * n_in + i]
            w_row = W + i * n_out
            for j in range(n_out):
                z[j] += a_i * w_row[j]
        activate_inplace(act, z, n_out)


cdef inline double output_delta(
    const floating* y,       # IN  (rows, n_out) network outputs
    const floating* T,       # IN  targets, row r at T + row_index(r) * n_out
    const Py_ssize_t* idx,   # IN  sample indices of the rows (NULL: rows start..start+rows-1)
    Py_ssize_t start,
    floating* delta,         # OUT (rows, n_out) dE/dz of each sample; NULL: loss only
    Py_ssize_t rows, Py_ssize_t n_out, int act, int loss, double loss_sum,
) noexcept nogil:
    # Returns loss_sum plus each row's loss, added one sample at a time (in double) so that the
    # total does not depend on how a batch is cut into blocks.
    cdef Py_ssize_t r, k
    cdef const floating* t
    cdef floating y_k, diff
    cdef double sample_loss
    for r in range(rows):
        t = T + (idx[start + r] if idx != NULL else start + r) * n_out
        sample_loss = 0.0
        for k in range(n_out):
            y_k = y[r * n_out + k]
            # squared_error: E = sum_k 1/2 (t_k - y_k)^2, dE/dy_k = y_k - t_k,
            # delta_k = dE/dy_k * dy_k/dz_k.
            diff = t[k] - y_k
            sample_loss += 0.5 * diff * diff
            if delta != NULL:
                delta[r * n_out + k] = (y_k - t[k]) * activation_derivative(act, y_k)
        loss_sum += sample_loss
    return loss_sum


cdef inline void backprop_layer(
    const floating* a_in,    # IN  (rows, n_in) this layer's input (the layer below's output)
    const floating* delta,   # IN  (rows, n_out) dE/dz of this layer
    const floating* W,       # IN  (n_in, n_out)
    floating* grad_W,        # IN/OUT (n_in, n_out) += a_in^T @ delta
    floating* grad_b,        # IN/OUT (n_out,)      += column sums of delta
    floating* delta_in,      # OUT (rows, n_in) dE/dz of the layer below, if compute_delta_in
    Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out,
    int act_in, bint compute_delta_in,
) noexcept nogil:
    cdef Py_ssize_t r, i, j
    cdef floating a_i, s
    cdef const floating* d
    cdef const floating* w_row
    cdef floating* g_row
    for r in range(rows):
        d = delta + r * n_out
        for i in range(n_in):
            a_i = a_in[r * n_in + i]
            g_row = grad_W + i * n_out
            for j in range(n_out):
                g_row[j] += a_i * d[j]
        for j in range(n_out):
            grad_b[j] += d[j]
        if compute_delta_in:
            for i in range(n_in):
                w_row = W + i * n_out
                s = 0
                for j in range(n_out):
                    s += w_row[j] * d[j]
                delta_in[r * n_in + i] = s * activation_derivative(act_in, a_in[r * n_in + i])


# --------------------------------------------------------------------------------------------
# (c) network kernels
# --------------------------------------------------------------------------------------------

cdef inline void load_rows(
    const Layout* lay, const floating* X, const Py_ssize_t* idx, Py_ssize_t start,
    Py_ssize_t rows, floating* A,
) noexcept nogil:
    # Copy the input rows of this block into the workspace's layer-0 slot (a gather when
    # shuffled), so that every layer reads contiguous rows.
    cdef Py_ssize_t r, n_in = lay.sizes[0]
    if idx == NULL:
        memcpy(A, X + start * n_in, rows * n_in * sizeof(floating))
        return
    for r in range(rows):
        memcpy(A + r * n_in, X + idx[start + r] * n_in, n_in * sizeof(floating))


cdef inline void forward_block(
    const Layout* lay, const floating* params, floating* A, Py_ssize_t rows,
) noexcept nogil:
    # Layer 0 of A holds the inputs; fills layers 1 .. n_layers.
    cdef Py_ssize_t l
    for l in range(lay.n_layers):
        dense_forward(
            A + rows * lay.a_off[l], params + lay.w_off[l], params + lay.b_off[l],
            A + rows * lay.a_off[l + 1], rows, lay.sizes[l], lay.sizes[l + 1], lay.act[l],
        )


cdef void forward_rows(
    const Layout* lay, const floating* params, const floating* X, Py_ssize_t n,
    floating* out, floating* A, Py_ssize_t chunk,
) noexcept nogil:
    cdef Py_ssize_t start, rows, L = lay.n_layers, n_out = lay.sizes[L]
    start = 0
    while start < n:
        rows = min(chunk, n - start)
        load_rows(lay, X, NULL, start, rows, A)
        forward_block(lay, params, A, rows)
        memcpy(out + start * n_out, A + rows * lay.a_off[L], rows * n_out * sizeof(floating))
        start += rows


cdef double batch_gradient(
    const Layout* lay, const floating* params, const floating* X, const floating* T,
    const Py_ssize_t* idx, Py_ssize_t start, Py_ssize_t count,
    floating* grad, floating* A, floating* D, Py_ssize_t chunk, bint want_grad,
) noexcept nogil:
    # Mean loss of rows start .. start+count-1 (through idx if given); if want_grad, grad gets the
    # gradient of that mean loss. Processed in blocks of `chunk` rows: gradients are sums over
    # samples, so blocks just keep adding, in sample order, before the one division at the end.
    cdef Py_ssize_t l, k, c0, rows, L = lay.n_layers
    cdef double loss_sum = 0.0
    if want_grad:
        memset(grad, 0, lay.n_params * sizeof(floating))
    c0 = 0
    while c0 < count:
        rows = min(chunk, count - c0)
        load_rows(lay, X, idx, start + c0, rows, A)
        forward_block(lay, params, A, rows)
        loss_sum = output_delta(
            A + rows * lay.a_off[L], T, idx, start + c0,
            D + rows * lay.a_off[L] if want_grad else NULL,
            rows, lay.sizes[L], lay.act[L - 1], lay.loss, loss_sum,
        )
        if want_grad:
            l = L - 1
            while l >= 0:
                backprop_layer(
                    A + rows * lay.a_off[l], D + rows * lay.a_off[l + 1], params + lay.w_off[l],
                    grad + lay.w_off[l], grad + lay.b_off[l], D + rows * lay.a_off[l],
                    rows, lay.sizes[l], lay.sizes[l + 1],
                    lay.act[l - 1] if l > 0 else ACT_IDENTITY, l > 0,
                )
                l -= 1
        c0 += rows
    if want_grad:
        for k in range(lay.n_params):
            grad[k] = grad[k] / count
    return loss_sum / count


cdef inline bint sgd_update(
    const Layout* lay, floating* params, floating* grad, floating lr, bint train_biases,
) noexcept nogil:
    # p <- p - lr * dE/dp; with train_biases off, each layer's bias block is left alone.
    # The new values are written over `grad` first and copied into `params` only if every one is
    # finite: a step that overflows is refused whole (returns False) and the network keeps the
    # parameters it had, instead of turning into inf/NaN.
    cdef Py_ssize_t l, k, end
    cdef bint finite = True
    cdef floating p_new
    for l in range(lay.n_layers):
        end = lay.b_off[l] + lay.sizes[l + 1] if train_biases else lay.b_off[l]
        for k in range(lay.w_off[l], end):
            p_new = params[k] - lr * grad[k]
            grad[k] = p_new
            finite = finite & isfinite(p_new)
    if not finite:
        return False
    if train_biases:
        memcpy(params, grad, lay.n_params * sizeof(floating))
    else:
        for l in range(lay.n_layers):
            memcpy(params + lay.w_off[l], grad + lay.w_off[l],
                   (lay.b_off[l] - lay.w_off[l]) * sizeof(floating))
    return True


cdef Py_ssize_t train_epochs(
    const Layout* lay, floating* params, const floating* X, const floating* T, Py_ssize_t n,
    Py_ssize_t epochs, floating lr, Py_ssize_t batch_size, bint shuffle, uint64_t* rng,
    bint train_biases, Py_ssize_t* order, floating* grad, floating* A, floating* D,
    Py_ssize_t chunk, double* history, double* bad_loss, int* failure,
) except -2 nogil:
    # The whole of MLP.fit: epochs of minibatch SGD. history[e] gets the mean over samples of the
    # losses computed during epoch e (each batch's mean loss before its update, weighted by the
    # batch's size). Returns `epochs`, or the index of the epoch in which a step failed; then
    # failure[0] says how and bad_loss[0] holds that batch's loss, and that step is not applied.
    # Raises KeyboardInterrupt between two steps when Ctrl-C is pressed: params then hold the
    # result of the last completed step.
    cdef Py_ssize_t e, start, count, k
    cdef Py_ssize_t work = 0
    cdef Py_ssize_t work_per_sample = lay.n_params + 1
    cdef double batch_loss, epoch_loss
    failure[0] = FIT_OK
    for e in range(epochs):
        if shuffle:
            shuffle_indices(order, n, rng)
        else:
            for k in range(n):
                order[k] = k
        epoch_loss = 0.0
        start = 0
        while start < n:
            count = min(batch_size, n - start)
            batch_loss = batch_gradient(lay, params, X, T, order, start, count, grad, A, D,
                                        chunk, True)
            bad_loss[0] = batch_loss
            if not isfinite(batch_loss):
                failure[0] = FIT_LOSS_NOT_FINITE
                return e
            if not sgd_update(lay, params, grad, lr, train_biases):
                failure[0] = FIT_UPDATE_NOT_FINITE
                return e
            epoch_loss += batch_loss * count
            start += count
            work += count * work_per_sample
            if work >= SIGNAL_CHECK_WORK:
                work = 0
                with gil:
                    PyErr_CheckSignals()
        history[e] = epoch_loss / n
    return epochs


# --------------------------------------------------------------------------------------------
# (d) Python entry points
# --------------------------------------------------------------------------------------------

cdef class Plan:
    """The C-level layout of one network (widths, parameter offsets, activation codes).

    Built once per :class:`cprop.MLP`; its methods take the network's flat ``params`` buffer and
    preallocated outputs/workspaces, all already validated by :mod:`cprop.mlp`.
    """

    cdef Layout lay
    cdef Py_ssize_t* _ints
    cdef int* _acts
    cdef readonly Py_ssize_t n_params
    cdef readonly Py_ssize_t total_width

    def __cinit__(self, sizes, activations, int loss):
        cdef Py_ssize_t L = len(sizes) - 1, l, offset
        if L < 1 or len(activations) != L:
            raise ValueError("Plan needs len(sizes) >= 2 and one activation per layer")
        self._ints = <Py_ssize_t*>malloc((4 * L + 3) * sizeof(Py_ssize_t))
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
        self.lay.a_off[L + 1] = self.lay.a_off[L] + sizes[L]
        self.lay.n_params = offset
        self.n_params = offset
        self.total_width = self.lay.a_off[L + 1]

    def __dealloc__(self):
        free(self._ints)
        free(self._acts)

    def init_glorot_uniform(self, floating[::1] params, uint64_t[::1] rng):
        """Glorot-uniform weights, layer by layer, row by row; zero biases."""
        cdef Py_ssize_t l, k, n_in, n_out
        cdef double limit
        with nogil:
            for l in range(self.lay.n_layers):
                n_in = self.lay.sizes[l]
                n_out = self.lay.sizes[l + 1]
                limit = sqrt(6.0 / <double>(n_in + n_out))
                for k in range(n_in * n_out):
                    params[self.lay.w_off[l] + k] = <floating>((2.0 * uniform01(&rng[0]) - 1.0) * limit)
                for k in range(n_out):
                    params[self.lay.b_off[l] + k] = 0

    def forward(self, const floating[::1] params, const floating[:, ::1] X,
                floating[:, ::1] out, floating[::1] A):
        """out <- network(X); A is a workspace of chunk * total_width values."""
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        with nogil:
            forward_rows(&self.lay, &params[0], &X[0, 0], X.shape[0], &out[0, 0], &A[0], chunk)

    def loss(self, const floating[::1] params, const floating[:, ::1] X,
             const floating[:, ::1] T, floating[::1] A):
        """The mean over samples of the per-sample loss."""
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef double result
        with nogil:
            result = batch_gradient(&self.lay, &params[0], &X[0, 0], &T[0, 0], NULL, 0,
                                    X.shape[0], NULL, &A[0], NULL, chunk, False)
        return result

    def gradient(self, const floating[::1] params, const floating[:, ::1] X,
                 const floating[:, ::1] T, floating[::1] grad, floating[::1] A, floating[::1] D):
        """grad <- gradient of the mean loss over X; returns that mean loss.

        With a workspace of one chunk covering all rows, A and D afterwards hold every layer's
        activations and deltas (what ``MLP.explain`` reads).
        """
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef double result
        with nogil:
            result = batch_gradient(&self.lay, &params[0], &X[0, 0], &T[0, 0], NULL, 0,
                                    X.shape[0], &grad[0], &A[0], &D[0], chunk, True)
        return result

    def train_step(self, floating[::1] params, const floating[:, ::1] X,
                   const floating[:, ::1] T, double lr, bint train_biases,
                   floating[::1] grad, floating[::1] A, floating[::1] D):
        """One SGD step on the batch (X, T).

        Returns (mean loss before the step, failure code); a failed step is not applied.
        """
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef double result
        cdef int failure = FIT_OK
        with nogil:
            result = batch_gradient(&self.lay, &params[0], &X[0, 0], &T[0, 0], NULL, 0,
                                    X.shape[0], &grad[0], &A[0], &D[0], chunk, True)
            if not isfinite(result):
                failure = FIT_LOSS_NOT_FINITE
            elif not sgd_update(&self.lay, &params[0], &grad[0], <floating>lr, train_biases):
                failure = FIT_UPDATE_NOT_FINITE
        return result, failure

    def fit(self, floating[::1] params, const floating[:, ::1] X, const floating[:, ::1] T,
            Py_ssize_t epochs, double lr, Py_ssize_t batch_size, bint shuffle,
            uint64_t[::1] rng, bint train_biases, Py_ssize_t[::1] order,
            floating[::1] grad, floating[::1] A, floating[::1] D, double[::1] history):
        """Run `epochs` epochs of minibatch SGD.

        Returns (epochs completed, failure code, the last batch loss computed).
        """
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef Py_ssize_t done
        cdef double bad_loss = 0.0
        cdef int failure = FIT_OK
        with nogil:
            done = train_epochs(&self.lay, &params[0], &X[0, 0], &T[0, 0], X.shape[0], epochs,
                                <floating>lr, batch_size, shuffle, &rng[0], train_biases,
                                &order[0], &grad[0], &A[0], &D[0], chunk, &history[0],
                                &bad_loss, &failure)
        return done, failure, bad_loss


def activation_forward(int act, const floating[::1] z, floating[::1] out):
    """out[i] <- f(z[i]) for the activation with code `act`."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(z.shape[0]):
            out[i] = activation(act, z[i])


def activation_backward(int act, const floating[::1] a, floating[::1] out):
    """out[i] <- f'(z[i]), computed from the output a[i] = f(z[i])."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(a.shape[0]):
            out[i] = activation_derivative(act, a[i])



def all_finite(const floating[::1] values):
    """True if no value is NaN or infinite (one pass, no temporary array, GIL released)."""
    cdef bint ok
    with nogil:
        ok = _all_finite(&values[0], values.shape[0])
    return ok


def all_finite_2d(const floating[:, ::1] values):
    """all_finite for a C-contiguous 2-D array (no reshape needed)."""
    cdef bint ok
    with nogil:
        ok = _all_finite(&values[0, 0], values.shape[0] * values.shape[1])
    return ok


cdef bint _all_finite(const floating* values, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not isfinite(values[i]):
            return False
    return True
