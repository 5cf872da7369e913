# A replica of NumPy's legacy generator, numpy.random.RandomState (MT19937), for the draws of
# RandomState.shuffle on a 1-d array: cprop.sklearn's epoch loop shuffles in the kernel, nogil,
# and must give exactly the permutations scikit-learn's Python loop draws from the estimator's
# RandomState. Transcribed from numpy/random/src/mt19937/mt19937.h and mt19937.c (mt19937_next,
# mt19937_gen, mt19937_next64), numpy/random/src/distributions/distributions.c (random_interval)
# and numpy/random/mtrand.pyx (RandomState._shuffle_raw). The state is RandomState.get_state()'s
# key (624 uint32) and pos; RandomState.set_state takes it back, so the Python object stays the
# one source of truth between calls (tests/test_sklearn_epoch_loop.py checks draws and state).
# SplitMix64 (_random.pxd) remains cprop's own generator; this one serves only that parity.

from libc.stdint cimport uint32_t, uint64_t


cdef enum:
    MT19937_N = 624
    MT19937_M = 397


cdef struct MT19937State:
    uint32_t key[624]    # RandomState.get_state()[1]
    int pos              # RandomState.get_state()[2]: the next key to temper, 624 = regenerate


cdef inline void mt19937_gen(MT19937State* state) noexcept nogil:
    # The next 624 keys (numpy's mt19937_gen).
    cdef uint32_t y
    cdef int i
    for i in range(MT19937_N):
        y = (state.key[i] & 0x80000000U) | (state.key[(i + 1) % MT19937_N] & 0x7fffffffU)
        state.key[i] = state.key[(i + MT19937_M) % MT19937_N] ^ (y >> 1)
        if y & 1:
            state.key[i] ^= 0x9908b0dfU
    state.pos = 0


cdef inline uint32_t mt19937_next32(MT19937State* state) noexcept nogil:
    # numpy's mt19937_next: the next key, tempered.
    cdef uint32_t y
    if state.pos == MT19937_N:
        mt19937_gen(state)
    y = state.key[state.pos]
    state.pos += 1
    y ^= y >> 11
    y ^= (y << 7) & 0x9d2c5680U
    y ^= (y << 15) & 0xefc60000U
    y ^= y >> 18
    return y


cdef inline uint64_t mt19937_next64(MT19937State* state) noexcept nogil:
    # numpy's mt19937_next64: two 32-bit outputs, the first one the high half.
    cdef uint64_t high = mt19937_next32(state)
    return (high << 32) | mt19937_next32(state)


cdef inline uint64_t mt19937_interval(MT19937State* state, uint64_t max_value) noexcept nogil:
    # numpy's random_interval: uniform in [0, max_value] by masked rejection, with 32-bit draws
    # while max_value fits in 32 bits and 64-bit draws beyond.
    cdef uint64_t mask = max_value, value
    if max_value == 0:
        return 0
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    if max_value <= 0xffffffffU:
        value = mt19937_next32(state) & mask
        while value > max_value:
            value = mt19937_next32(state) & mask
    else:
        value = mt19937_next64(state) & mask
        while value > max_value:
            value = mt19937_next64(state) & mask
    return value


cdef inline void mt19937_shuffle(MT19937State* state, Py_ssize_t* x,
                                 Py_ssize_t n) noexcept nogil:
    # RandomState.shuffle(x) of a 1-d array (its _shuffle_raw): Fisher-Yates from the end, for
    # i = n-1 down to 1 swap x[i] and x[random_interval(i)]. Shuffling an index array in place is
    # scikit-learn's `idx = idx[perm]` for perm = arange(n) shuffled by the same draws.
    cdef Py_ssize_t i = n - 1, j, tmp
    while i >= 1:
        j = <Py_ssize_t>mt19937_interval(state, <uint64_t>i)
        tmp = x[i]
        x[i] = x[j]
        x[j] = tmp
        i -= 1
