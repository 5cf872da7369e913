# One training step per call, checked in C: the Stepper behind net.stepper() and
# MLP.train_step's repeated calls, and the C-level input checks they share with MLP._xt.
# (Included into _mlp.pyx: one extension module.)

# A step on at most this many multiply-adds keeps the GIL: releasing and retaking it (~0.2 us)
# would cost more than the step (Stepper).
NOGIL_MIN_WORK = 20000


cdef inline Py_ssize_t usable_rows(object value, int typenum, Py_ssize_t width, bint* single):
    # The number of rows if `value` is already exactly what a kernel takes - an ndarray (not a
    # subclass) of the network's dtype in native byte order, C-contiguous and aligned, of shape
    # (rows, width) or (width,) (then *single) - else 0. No conversion, no exception.
    cdef cnp.ndarray arr
    if not cnp.PyArray_CheckExact(value):
        return 0
    arr = <cnp.ndarray>value
    if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISCARRAY_RO(arr):
        return 0
    if cnp.PyArray_NDIM(arr) == 2 and cnp.PyArray_DIM(arr, 1) == width:
        single[0] = False
        return cnp.PyArray_DIM(arr, 0)
    if cnp.PyArray_NDIM(arr) == 1 and cnp.PyArray_DIM(arr, 0) == width:
        single[0] = True
        return 1
    return 0


cdef bint targets_valid(const floating* T, Py_ssize_t rows, Py_ssize_t n_out,
                        int loss) noexcept nogil:
    # What MLP._xt asks of float targets for each loss (finite; in [0, 1] for the log-losses;
    # >= 0 for poisson; cross-entropy rows summing to 1 within 1e-6 / 1e-5, the sum taken in
    # double).
    cdef Py_ssize_t r, k
    cdef double v, row_sum
    cdef double tol = 1e-5 if floating is float else 1e-6
    for r in range(rows):
        row_sum = 0.0
        for k in range(n_out):
            v = T[r * n_out + k]
            if not isfinite(v):
                return False
            if loss == LOSS_POISSON:
                if not v >= 0.0:
                    return False
            elif loss != LOSS_SQUARED_ERROR and not (0.0 <= v <= 1.0):
                return False
            row_sum += v
        if loss == LOSS_CROSS_ENTROPY and (row_sum - 1.0 > tol or 1.0 - row_sum > tol):
            return False
    return True


def inputs_ready(Plan plan, X, T):
    """True if X (rows, n_in) and T (rows, n_out) are already exactly what the kernels take -
    ndarrays of one float dtype, native order, C-contiguous, aligned - with finite inputs and
    targets valid for the loss (as ``cprop.mlp.MLP._xt`` would accept them unchanged). Checked
    in C without the GIL; False means: take the Python checks (which convert, or raise)."""
    cdef bint single_x = False, single_t = False, ok
    cdef Py_ssize_t rows, n_in = plan.lay.sizes[0], n_out = plan.lay.sizes[plan.lay.n_layers]
    cdef int typenum
    cdef int loss = plan.lay.loss
    cdef char* x_data
    cdef char* t_data
    if not cnp.PyArray_CheckExact(X):
        return False
    typenum = cnp.PyArray_TYPE(<cnp.ndarray>X)
    if typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT:
        return False
    rows = usable_rows(X, typenum, n_in, &single_x)
    if rows == 0 or single_x or usable_rows(T, typenum, n_out, &single_t) != rows or single_t:
        return False
    x_data = <char*>cnp.PyArray_DATA(<cnp.ndarray>X)
    t_data = <char*>cnp.PyArray_DATA(<cnp.ndarray>T)
    with nogil:
        if typenum == cnp.NPY_DOUBLE:
            ok = (all_finite_ptr(<double*>x_data, rows * n_in)
                  and targets_valid(<double*>t_data, rows, n_out, loss))
        else:
            ok = (all_finite_ptr(<float*>x_data, rows * n_in)
                  and targets_valid(<float*>t_data, rows, n_out, loss))
    return ok


cdef class Stepper:
    """One training step per call, checked in C: ``net.stepper(...)`` and ``MLP.train_step``.

    Built by :class:`cprop.mlp.MLP` over the network's buffers (parameters, workspaces, its
    optimizer state and step counter) for one optimizer configuration. A call takes the step
    through ``train_rows``, the driver ``fit`` uses, when the inputs are exactly what the kernel
    takes - ndarrays of the network's dtype, native order, C-contiguous and aligned, of the right
    shapes, finite, targets valid for the loss, finite parameters - and the network still holds
    this stepper's optimizer state (``generation`` unchanged). Otherwise it changes nothing and
    hands the call to ``fallback`` (the checked Python route, which converts or raises the proper
    error). A refused step changes nothing either (the kernels check before they commit), so the
    checked route repeats it and raises.
    """

    cdef Plan plan
    cdef object arrays            # keeps every buffer below alive
    cdef object lock
    cdef readonly object options  # the cprop.optimizers.OptimizerOptions of this stepper
    cdef readonly object lr       # the learning rate of __call__ (a float), or None
    # train_step's optimizer arguments as given when this stepper was built (compared by
    # step_if_same), or None each when it was built by net.stepper()
    cdef object arg_optimizer, arg_momentum, arg_nesterov, arg_beta1, arg_beta2, arg_eps
    cdef object arg_alpha
    cdef bint has_args
    cdef object fallback          # fallback(stepper, X, T) -> loss: the checked route
    cdef OptConfig opt
    cdef bint train_biases, double_type, needs_steps
    cdef int typenum
    cdef Py_ssize_t chunk, n_in, n_out
    cdef char* params
    cdef char* A
    cdef char* D
    cdef char* grad
    cdef char* state
    cdef int64_t* steps
    cdef int64_t* generation
    cdef int64_t my_generation

    def __cinit__(self, Plan plan, cnp.ndarray params, cnp.ndarray A, cnp.ndarray D,
                  cnp.ndarray grad, cnp.ndarray state, cnp.ndarray steps,
                  cnp.ndarray generation, options, bint train_biases, object lock, lr,
                  object fallback, dict args=None):
        cdef int typenum = cnp.PyArray_TYPE(params)
        if typenum not in (cnp.NPY_DOUBLE, cnp.NPY_FLOAT):
            raise TypeError("Stepper: params must be float64 or float32")
        for arr in (params, A, D, grad, state):
            if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISCARRAY(arr):
                raise ValueError("Stepper: buffers must share params' dtype, C-contiguous")
        for arr in (steps, generation):
            if (cnp.PyArray_TYPE(arr) != cnp.NPY_INT64 or not cnp.PyArray_ISCARRAY(arr)
                    or cnp.PyArray_SIZE(arr) != 1):
                raise ValueError("Stepper: steps and generation must be one int64 each")
        if (cnp.PyArray_SIZE(params) != plan.n_params
                or cnp.PyArray_SIZE(A) != cnp.PyArray_SIZE(D)
                or cnp.PyArray_SIZE(A) < plan.total_width
                or cnp.PyArray_SIZE(A) % plan.total_width != 0):
            raise ValueError("Stepper: buffer sizes do not match the plan")
        # A call's rows r have min(r, BLOCK_ROWS) == chunk, so at most grad_slots(chunk) parts.
        plan.check_grad(cnp.PyArray_SIZE(grad), cnp.PyArray_SIZE(A) // plan.total_width)
        self.plan = plan
        self.arrays = (params, A, D, grad, state, steps, generation)
        self.lock = lock
        self.options = options
        self.lr = lr
        self.fallback = fallback
        self.has_args = args is not None
        if args is not None:
            self.arg_optimizer = args["optimizer"]
            self.arg_momentum = args["momentum"]
            self.arg_nesterov = args["nesterov"]
            self.arg_beta1 = args["beta1"]
            self.arg_beta2 = args["beta2"]
            self.arg_eps = args["eps"]
            self.arg_alpha = args["alpha"]
        self.opt = make_opt_config(options, train_biases)
        self.needs_steps = self.opt.kind == OPT_RPROP
        if self.opt.kind != OPT_SGD or self.opt.momentum != 0:
            if cnp.PyArray_SIZE(state) < plan.n_params:
                raise ValueError("Stepper: the optimizer needs its state buffer")
        self.train_biases = train_biases
        self.typenum = typenum
        self.double_type = typenum == cnp.NPY_DOUBLE
        self.chunk = cnp.PyArray_SIZE(A) // plan.total_width
        self.n_in = plan.lay.sizes[0]
        self.n_out = plan.lay.sizes[plan.lay.n_layers]
        self.params = <char*>cnp.PyArray_DATA(params)
        self.A = <char*>cnp.PyArray_DATA(A)
        self.D = <char*>cnp.PyArray_DATA(D)
        self.grad = <char*>cnp.PyArray_DATA(grad)
        self.state = (<char*>cnp.PyArray_DATA(state) if cnp.PyArray_SIZE(state) > 0
                      else NULL)
        self.steps = <int64_t*>cnp.PyArray_DATA(steps)
        self.generation = <int64_t*>cnp.PyArray_DATA(generation)
        self.my_generation = self.generation[0]

    def rebind(self, cnp.ndarray state, cnp.ndarray steps, cnp.ndarray A, cnp.ndarray D,
               cnp.ndarray grad):
        """Take the network's current optimizer state buffers (after the checked route switched
        the network back to this stepper's options) and the workspaces of the last call's
        block size (the next calls of that size then take the C route); the caller holds the
        network's lock."""
        for arr in (state, A, D, grad):
            if cnp.PyArray_TYPE(arr) != self.typenum or not cnp.PyArray_ISCARRAY(arr):
                raise ValueError("Stepper: buffers must share params' dtype, C-contiguous")
        if (cnp.PyArray_SIZE(A) != cnp.PyArray_SIZE(D)
                or cnp.PyArray_SIZE(A) < self.plan.total_width
                or cnp.PyArray_SIZE(A) % self.plan.total_width != 0):
            raise ValueError("Stepper: buffer sizes do not match the plan")
        self.plan.check_grad(cnp.PyArray_SIZE(grad), cnp.PyArray_SIZE(A) // self.plan.total_width)
        if (cnp.PyArray_TYPE(steps) != cnp.NPY_INT64 or not cnp.PyArray_ISCARRAY(steps)
                or cnp.PyArray_SIZE(steps) != 1):
            raise ValueError("Stepper: steps must be one int64")
        if ((self.opt.kind != OPT_SGD or self.opt.momentum != 0)
                and cnp.PyArray_SIZE(state) < self.plan.n_params):
            raise ValueError("Stepper: the optimizer needs its state buffer")
        self.arrays = self.arrays[:1] + (A, D, grad, state, steps) + self.arrays[6:]
        self.chunk = cnp.PyArray_SIZE(A) // self.plan.total_width
        self.A = <char*>cnp.PyArray_DATA(A)
        self.D = <char*>cnp.PyArray_DATA(D)
        self.grad = <char*>cnp.PyArray_DATA(grad)
        self.state = (<char*>cnp.PyArray_DATA(state) if cnp.PyArray_SIZE(state) > 0
                      else NULL)
        self.steps = <int64_t*>cnp.PyArray_DATA(steps)
        self.my_generation = self.generation[0]

    @property
    def current(self):
        """True while the network still holds this stepper's buffers and optimizer state."""
        return self.generation[0] == self.my_generation

    def __call__(self, X, T):
        """One step on (X, T) at this stepper's learning rate; returns the loss before it."""
        cdef object loss = self.try_step(X, T, self.lr)
        if loss is None:
            return self.fallback(self, X, T)
        return loss

    @staticmethod
    cdef inline bint same_arg(object a, object b):
        # Identical objects (the defaults always are) or equal floats/strings of the same type,
        # so that a cached valid call never stands in for an invalid one; no allocation.
        if a is b:
            return True
        if type(a) is not type(b):
            return False
        if type(a) is float:
            return PyFloat_AS_DOUBLE(a) == PyFloat_AS_DOUBLE(b)
        if type(a) is str:
            return a == b
        return False

    def step_if_same(self, X, T, lr, optimizer, momentum, nesterov, beta1, beta2, eps, alpha,
                     train_biases):
        """``step`` for ``MLP.train_step``: None unless the optimizer arguments are the ones
        this stepper was built with (identical objects or equal floats of the same type)."""
        if not self.has_args or train_biases is not self.train_biases:
            return None
        if not (Stepper.same_arg(optimizer, self.arg_optimizer)
                and Stepper.same_arg(momentum, self.arg_momentum)
                and Stepper.same_arg(nesterov, self.arg_nesterov)
                and Stepper.same_arg(beta1, self.arg_beta1)
                and Stepper.same_arg(beta2, self.arg_beta2)
                and Stepper.same_arg(eps, self.arg_eps)
                and Stepper.same_arg(alpha, self.arg_alpha)):
            return None
        return self.try_step(X, T, lr)

    def step(self, X, T, lr):
        """The loss before the step, or None (nothing changed): see the class docstring."""
        return self.try_step(X, T, lr)

    cdef object try_step(self, object X, object T, object lr):
        cdef bint single_x = False, single_t = False, ok = True, release
        cdef Py_ssize_t work = 0
        cdef Py_ssize_t rows, t_rows
        cdef double lr_value, loss = 0.0
        cdef float lr_float
        cdef int failure = FIT_OK
        if type(lr) is not float or self.generation[0] != self.my_generation:
            return None
        lr_value = PyFloat_AS_DOUBLE(lr)
        if not (isfinite(lr_value) and lr_value > 0):
            return None
        if not self.double_type:
            lr_float = <float>lr_value
            if not (isfinite(lr_float) and lr_float > 0):
                return None
        rows = usable_rows(X, self.typenum, self.n_in, &single_x)
        if rows == 0 or min(rows, BLOCK_ROWS_C) != self.chunk:
            return None
        t_rows = usable_rows(T, self.typenum, self.n_out, &single_t)
        # T: (rows, n_out), or (n_out,) for one sample; (rows,) for n_out == 1 goes the long way.
        if t_rows != rows or (single_t and not single_x):
            return None
        release = rows * (self.plan.n_params + self.n_in) >= NOGIL_MIN_WORK
        self.lock.acquire()
        try:
            if self.generation[0] != self.my_generation:
                return None
            if self.needs_steps and self.steps[0] == 0:
                return None  # Rprop's first step sets its step sizes from lr: the long way
            if release:
                with nogil:
                    ok = self.run(<char*>cnp.PyArray_DATA(<cnp.ndarray>X),
                                  <char*>cnp.PyArray_DATA(<cnp.ndarray>T), rows, lr_value,
                                  &loss, &failure, &work)
            else:
                ok = self.run(<char*>cnp.PyArray_DATA(<cnp.ndarray>X),
                              <char*>cnp.PyArray_DATA(<cnp.ndarray>T), rows, lr_value, &loss,
                              &failure, &work)
            if failure == FIT_INTERRUPTED:
                raise_interrupt()  # Ctrl-C part-way through the gradient: nothing applied
        finally:
            self.lock.release()
        if not ok or failure != FIT_OK:
            return None
        return PyFloat_FromDouble(loss)

    cdef bint run(self, char* X, char* T, Py_ssize_t rows, double lr, double* loss,
                  int* failure, Py_ssize_t* work) noexcept nogil:
        if self.double_type:
            return self.run_typed(<double*>X, <double*>T, rows, lr, loss, failure,
                                  <double*>self.params, work)
        return self.run_typed(<float*>X, <float*>T, rows, lr, loss, failure,
                              <float*>self.params, work)

    cdef bint run_typed(self, floating* X, floating* T, Py_ssize_t rows, double lr,
                        double* loss, int* failure, floating* params,
                        Py_ssize_t* work) noexcept nogil:
        # False: an input the checked route must see (it raises); else the step's outcome.
        cdef Layout* lay = &self.plan.lay
        cdef double total = 0.0, p_bound = -1.0
        if not all_finite_ptr(X, rows * self.n_in) or not all_finite_ptr(params, lay.n_params):
            return False
        if not targets_valid(T, rows, self.n_out, lay.loss):
            return False
        failure[0] = train_rows(lay, &self.opt, params, X, T, NULL, NULL, True, rows, rows, lr,
                                <floating*>self.grad, <floating*>self.A, <floating*>self.D,
                                self.chunk, <floating*>self.state, self.steps, &total, loss,
                                &p_bound, NULL, work, NULL, NULL)
        return True  # loss: the batch's mean loss (one batch), as train_rows left it
