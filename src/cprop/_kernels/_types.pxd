# Codes and structs shared by every kernel module. The Python layer never writes these numbers
# itself: it reads them from ``cprop._kernels._mlp.ACTIVATION_CODES`` (etc.), so the two cannot
# drift apart.

# The activation and loss codes are defined once, in _formulas.h (the C kernels read them too).
cdef extern from "_formulas.h":
    cdef enum:
        ACT_IDENTITY "CPROP_ACT_IDENTITY"
        ACT_SIGMOID "CPROP_ACT_SIGMOID"
        ACT_TANH "CPROP_ACT_TANH"
        ACT_RELU "CPROP_ACT_RELU"
        ACT_LEAKY_RELU "CPROP_ACT_LEAKY_RELU"
        ACT_SOFTMAX "CPROP_ACT_SOFTMAX"        # output layer only: row-wise, not elementwise
        ACT_EXP "CPROP_ACT_EXP"                # output layer only: e^z (poisson's output)
        LOSS_SQUARED_ERROR "CPROP_LOSS_SQUARED_ERROR"  # sum_k 1/2 (t_k - y_k)^2, any output
        # -sum_k t_k log y_k, softmax output, from the logits
        LOSS_CROSS_ENTROPY "CPROP_LOSS_CROSS_ENTROPY"
        # -sum_k [t_k log y_k + (1-t_k) log(1-y_k)], sigmoid output
        LOSS_BINARY_CROSS_ENTROPY "CPROP_LOSS_BINARY_CROSS_ENTROPY"
        # sum_k t_k log(t_k / y_k) - t_k + y_k (half Poisson deviance), exp output, from the logits
        LOSS_POISSON "CPROP_LOSS_POISSON"

cdef enum OptimizerCode:
    OPT_SGD = 0      # torch.optim.SGD (dampening 0), momentum and nesterov optional
    OPT_ADAM = 1     # torch.optim.Adam (amsgrad off)
    OPT_RPROP = 2    # torch.optim.Rprop (iRprop-)
    OPT_ADAMW = 3    # torch.optim.AdamW: Adam with decoupled weight decay alpha on the weights

cdef enum InitCode:
    INIT_GLOROT_UNIFORM = 0
    INIT_GLOROT_NORMAL = 1
    INIT_HE_UNIFORM = 2
    INIT_HE_NORMAL = 3

# Why a training step was refused (the step is then not applied).
cdef enum FitFailure:
    FIT_OK = 0
    FIT_LOSS_NOT_FINITE = 1     # a batch loss came out inf/NaN: the outputs overflowed
    FIT_UPDATE_NOT_FINITE = 2   # the update would have made a parameter inf/NaN
    # a weighted minibatch whose sample weights sum to 0 (its weighted mean loss is undefined;
    # scikit-learn raises ZeroDivisionError there). 3 and 4 are taken by FUSED_FALLBACK
    # (_routes.pxd) and FIT_INTERRUPTED (_mlp.pyx).
    FIT_WEIGHTS_SUM_TO_ZERO = 5


# Fortran gemm as BLAS exports it (LP64): SciPy's cython_blas and scipy-openblas32 alike.
ctypedef void (*sgemm_fn)(char* transa, char* transb, int* m, int* n, int* k, float* alpha,
                          float* a, int* lda, float* b, int* ldb, float* beta, float* c,
                          int* ldc) noexcept nogil
ctypedef void (*dgemm_fn)(char* transa, char* transb, int* m, int* n, int* k, double* alpha,
                          double* a, int* lda, double* b, int* ldb, double* beta, double* c,
                          int* ldc) noexcept nogil


# The shape of a network, as C arrays owned by ``_mlp.Plan``. Layer l (0 <= l < n_layers) maps
# sizes[l] inputs to sizes[l + 1] outputs; its weights are params[w_off[l] : w_off[l] + n_in*n_out]
# (row-major (n_in, n_out), so z = a @ W + b) and its biases params[b_off[l] : b_off[l] + n_out].
# In a workspace of `rows` rows, the activations of layer l (l = 0 is the input) start at
# rows * a_off[l]; rows * a_off[n_layers + 1] holds the output layer's net input z (kept because
# the cross-entropy losses are computed from the logits), rows * a_off[n_layers + 2] one value per
# row, the softmax's log-sum-exp of z (float64 cross-entropy), and a_off[n_layers + 3] is the
# total width per row.
cdef struct Layout:
    Py_ssize_t n_layers
    Py_ssize_t n_params
    Py_ssize_t* sizes
    Py_ssize_t* w_off
    Py_ssize_t* b_off
    Py_ssize_t* a_off
    int* act
    int loss
    double slope             # negative slope of leaky_relu
    # a layer block of rows * n_in * n_out multiply-adds at least this large goes through BLAS
    # gemm; smaller ones through tight loops
    Py_ssize_t blas_min_work
    sgemm_fn sgemm           # the BLAS chosen at import (_blas.pxi), copied in by Plan
    dgemm_fn dgemm
    int disabled_routes      # bit (1 << route) set: the step plan never picks that route


# The routes a training step can take (_mlp.choose_route picks one; its design block says why
# each exists and which bench row and test pin it).
cdef enum Route:
    ROUTE_GENERAL = 0        # batch gradient, then the optimizer's update: any step
    ROUTE_ROW_SGD = 1        # one row, stateless SGD: update straight from activations/deltas
    ROUTE_TINY2_ROWS = 2     # one row, stateless SGD, float64, one hidden layer, widths <= 4
    ROUTE_FUSED_SGD = 3      # stateless SGD, every layer through gemm: update folded into gemm


# One optimizer and its options (the learning rate is passed per epoch).
cdef struct OptConfig:
    int kind
    double momentum
    bint nesterov
    double beta1
    double beta2
    double eps
    # on weights only: L2, alpha * W added to the weight gradient; for AdamW the decoupled
    # weight decay W <- W (1 - lr alpha) before Adam's step
    double alpha
    double eta_minus
    double eta_plus
    double step_min
    double step_max
    bint train_biases
    # scikit-learn's conventions (cprop.sklearn), instead of torch's: L2 alpha divided by each
    # batch's rows; Adam's eps added to sqrt(v) rather than to sqrt(v / (1 - beta2^t)), i.e.
    # torch's eps = eps / sqrt(1 - beta2^t) at step t. The two updates are then equal.
    bint l2_per_row
    bint adam_eps_unscaled
