# Codes shared by every kernel module. The Python layer never writes these numbers itself: it reads
# them from ``cprop._kernels._mlp.ACTIVATION_CODES`` / ``LOSS_CODES``, so the two cannot drift.

cdef enum ActivationCode:
    ACT_IDENTITY = 0
    ACT_SIGMOID = 1
    ACT_TANH = 2
    ACT_RELU = 3

cdef enum LossCode:
    LOSS_SQUARED_ERROR = 0

# Why a training step was refused (the step is then not applied).
cdef enum FitFailure:
    FIT_OK = 0
    FIT_LOSS_NOT_FINITE = 1     # a batch loss came out inf/NaN: the outputs overflowed
    FIT_UPDATE_NOT_FINITE = 2   # the update would have made a parameter inf/NaN


# The shape of a network, as C arrays owned by ``_mlp.Plan``. Layer l (0 <= l < n_layers) maps
# sizes[l] inputs to sizes[l + 1] outputs; its weights are params[w_off[l] : w_off[l] + n_in*n_out]
# (row-major (n_in, n_out), so z = a @ W + b) and its biases params[b_off[l] : b_off[l] + n_out].
# In a workspace of `rows` rows, the activations of layer l (l = 0 is the input) start at
# rows * a_off[l]; a_off[n_layers + 1] is the total width, the sum of all sizes.
cdef struct Layout:
    Py_ssize_t n_layers
    Py_ssize_t n_params
    Py_ssize_t* sizes
    Py_ssize_t* w_off
    Py_ssize_t* b_off
    Py_ssize_t* a_off
    int* act
    int loss
