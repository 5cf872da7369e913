# cprop's own random numbers: SplitMix64 (Steele, Lea & Flood 2014). We don't use the C library's
# rand() or NumPy's generators because the compiled path and cprop.oracle (plain Python ints) must
# draw bit-identical streams on every platform; SplitMix64 is five lines of 64-bit arithmetic
# that Python can repeat exactly with "& 0xFFFFFFFFFFFFFFFF".

from libc.stdint cimport uint64_t


cdef inline uint64_t splitmix64_next(uint64_t* state) noexcept nogil:
    cdef uint64_t z
    state[0] += <uint64_t>0x9E3779B97F4A7C15ULL
    z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline double uniform01(uint64_t* state) noexcept nogil:
    # The top 53 bits as a double in [0, 1): exact, no rounding.
    return <double>(splitmix64_next(state) >> 11) * (1.0 / 9007199254740992.0)


cdef inline void shuffle_indices(Py_ssize_t* order, Py_ssize_t n, uint64_t* state) noexcept nogil:
    # Fill `order` with a fresh Fisher-Yates shuffle of 0 .. n-1 (never a reshuffle of its old
    # content).
    cdef Py_ssize_t i, j, tmp
    for i in range(n):
        order[i] = i
    i = n - 1
    while i >= 1:
        j = <Py_ssize_t>(splitmix64_next(state) % <uint64_t>(i + 1))
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp
        i -= 1
