# One network's batch on several threads: MLP.fit(n_threads=...).
#
# A large batch through gemm is cut into fixed parts (batch_parts: it depends on the network and
# the batch's rows, never on the thread count). Each part's loss and gradient sum go to slots of
# their own, and the parts are added in part order (((g0 + g1) + g2) + g3), then divided by the
# batch's rows: what the threads change is only who computes a part, so every thread count gives
# the same bits. With one thread (team NULL) the leader computes the parts one after the other.
#
# The rule leaves every batch that does not go through gemm whole, so the loop routes stay
# bit-identical to cprop.oracle; the gemm routes never were (gemm's own blocking), and a part of
# 64+ rows keeps gemm efficient. Parts cost at most MAX_PARTS - 1 extra gradient buffers (the
# workspace's grad holds MAX_PARTS slots when the network can be cut: Plan.grad_slots).
#
# An Adam / AdamW batch runs whole in one job (adam_batch): parts, a barrier, each thread's slice
# of the sum written into its own part's slot, a barrier, each thread's slice of the step. The
# cache lines that cross between the cores each step (the other threads' parts of the slice a
# thread sums; the parameters the others updated, which the forward pass reads) are requested
# together before the pass that needs them (cprop_team_prefetch): found missing one at a time
# they cost the 2-thread W5 step about 3 us of its ~50.
#
# (Included into _mlp.pyx: one extension module.)

import threading

from cprop._kernels._optimizers cimport (
    AdamStep, AdamBounds, adam_prepare, adam_step_is_safe, adam_commit,
    adam_carried_bounds_prove, adam_bounds_carry,
)
from cprop._kernels._team cimport (
    ThreadTeam, cprop_team, cprop_team_init, cprop_team_work, cprop_team_run, cprop_team_stop,
    cprop_team_barrier, cprop_team_prefetch, CPROP_LOAD_ACQ, CPROP_STORE_REL,
)

cdef enum:
    MAX_PARTS_C = 4      # parts of one batch at most (so at most 4 threads help one network)
    PART_ROWS_C = 64     # rows of a part at least

MAX_PARTS = MAX_PARTS_C
PART_ROWS = PART_ROWS_C


cdef Py_ssize_t batch_parts(const Layout* lay, Py_ssize_t rows) noexcept nogil:
    # The parts a batch of `rows` rows is cut into: the largest power of two <= MAX_PARTS that
    # leaves each part PART_ROWS rows or more, if every layer of such a part goes through gemm;
    # else 1 (the batch whole).
    cdef Py_ssize_t l, parts = 1
    if rows < 2 * PART_ROWS_C:
        return 1
    for l in range(lay.n_layers):
        if PART_ROWS_C * lay.sizes[l] * lay.sizes[l + 1] < lay.blas_min_work:
            return 1
    while parts < MAX_PARTS_C and 2 * parts * PART_ROWS_C <= rows:
        parts *= 2
    return parts


ctypedef struct AdamJob:
    const Layout* lay
    AdamStep step
    void* params
    const void* grad
    void* state
    bint is_double
    Py_ssize_t n_threads
    AdamBounds* bounds          # carried between the steps (adam_step_is_safe)


ctypedef struct PartsJob:
    const Layout* lay
    const void* params
    const void* X
    const void* T
    const void* sw
    const Py_ssize_t* idx
    Py_ssize_t start, count, n_parts, chunk
    Py_ssize_t n_threads       # the team's threads (part k is thread k % n_threads's)
    void* grad                 # n_parts slots of n_params
    void** A                   # a workspace per thread
    void** D
    bint want_grad, is_double
    bint own_slots             # the reduction writes thread t's slice into slot reduced_slot(t)
    Py_ssize_t* work           # the leader's signal-poll counter
    long abort                 # set when the leader was interrupted: the others stop early
    double divisor             # the batch's rows, or its sample-weight sum
    double loss[MAX_PARTS_C]
    double grad_max[MAX_PARTS_C]   # per thread: max |grad| of its slice after the reduction


cdef void part_share(PartsJob* job, int tid, floating* typed) noexcept nogil:
    # Thread tid's parts: tid, tid + n_threads, ... (typed: NULL, only to pick the dtype).
    cdef Py_ssize_t k, n_threads = job.n_threads
    cdef Py_ssize_t b0, b1, n = job.lay.n_params
    cdef floating* grad = <floating*>job.grad
    k = tid
    while k < job.n_parts:
        b0 = job.start + k * job.count // job.n_parts
        b1 = job.start + (k + 1) * job.count // job.n_parts
        job.loss[k] = rows_gradient(
            job.lay, <const floating*>job.params, <const floating*>job.X,
            <const floating*>job.T, <const floating*>job.sw, job.idx, b0, b1 - b0,
            grad + k * n if job.want_grad else NULL, <floating*>job.A[tid],
            <floating*>job.D[tid], job.chunk, job.want_grad, job.work if tid == 0 else NULL,
            &job.abort)
        if tid == 0 and job.work != NULL and job.work[0] == INTERRUPTED:
            CPROP_STORE_REL(&job.abort, 1)
            return
        k += n_threads


cdef inline void thread_slice(Py_ssize_t n, Py_ssize_t tid, Py_ssize_t n_threads,
                              Py_ssize_t* i0, Py_ssize_t* i1) noexcept nogil:
    # Thread tid's share of 0 .. n-1 for elementwise work (cut at multiples of 8 values, so no
    # two threads write one cache line).
    i0[0] = (n * tid // n_threads) & ~<Py_ssize_t>7
    i1[0] = n if tid == n_threads - 1 else (n * (tid + 1) // n_threads) & ~<Py_ssize_t>7


cdef inline Py_ssize_t reduced_slot(const PartsJob* job, Py_ssize_t tid) noexcept nogil:
    # The slot that holds thread tid's slice of the summed gradient: 0, or with own_slots the
    # slot of the part the thread computed itself (its cache lines are already the thread's),
    # 0 for a thread with no part.
    return tid if job.own_slots and tid < job.n_parts else 0


cdef void reduce_share(PartsJob* job, int tid, floating* typed) noexcept nogil:
    # Thread tid's slice of the parameters: (((g0 + g1) + g2) + g3) / divisor in one pass
    # (sum_parts) into slot reduced_slot(tid), which also takes the slice's max |grad| for the
    # update's safety test.
    cdef Py_ssize_t n = job.lay.n_params, i0, i1, k
    cdef floating* grad = <floating*>job.grad
    thread_slice(n, tid, job.n_threads, &i0, &i1)
    job.grad_max[tid] = 0
    for k in range(job.n_parts):
        if k % job.n_threads != tid:  # (the parts the other threads wrote)
            cprop_team_prefetch(grad + k * n + i0, (i1 - i0) * sizeof(floating))
    if i1 > i0:
        job.grad_max[tid] = sum_parts(grad + i0, i1 - i0, n, job.n_parts, job.divisor,
                                      grad + reduced_slot(job, tid) * n + i0)


cdef double parts_grad_max(const PartsJob* job) noexcept nogil:
    # max |grad| of the summed gradient, from the threads' slices (NaN if any is NaN).
    cdef Py_ssize_t t
    cdef double top = job.grad_max[0]
    for t in range(1, job.n_threads):
        # (a NaN anywhere must reach the test: NaN > x is false, so test it explicitly)
        if job.grad_max[t] > top or job.grad_max[t] != job.grad_max[t]:
            top = job.grad_max[t]
    return top


cdef double parts_loss(const PartsJob* job) noexcept nogil:
    # The batch's mean loss: the parts' loss sums added in part order, over the divisor.
    cdef Py_ssize_t k
    cdef double loss_sum = 0.0
    for k in range(job.n_parts):
        loss_sum += job.loss[k]
    return loss_sum / job.divisor


cdef void gather_reduced(PartsJob* job, floating* typed) noexcept nogil:
    # Copy every thread's slice of the summed gradient into slot 0 (after own_slots).
    cdef Py_ssize_t t, i0, i1, n = job.lay.n_params, slot
    cdef floating* grad = <floating*>job.grad
    for t in range(job.n_threads):
        slot = reduced_slot(job, t)
        thread_slice(n, t, job.n_threads, &i0, &i1)
        if slot != 0 and i1 > i0:
            memcpy(grad + i0, grad + slot * n + i0, (i1 - i0) * sizeof(floating))


cdef void adam_share(AdamJob* job, int tid, floating* typed) noexcept nogil:
    # Thread tid's slice of the step.
    cdef Py_ssize_t n = job.lay.n_params, i0, i1
    thread_slice(n, tid, job.n_threads, &i0, &i1)
    if i1 > i0:
        adam_commit(job.lay, &job.step, <floating*>job.params, <const floating*>job.grad,
                    <floating*>job.state, i0, i1)


cdef void adam_commit_job(void* ctx, int tid) noexcept nogil:
    cdef AdamJob* job = <AdamJob*>ctx
    if job.is_double:
        adam_share(job, tid, <double*>NULL)
    else:
        adam_share(job, tid, <float*>NULL)


cdef void team_adam_prepare(
    AdamJob* job, const Layout* lay, const OptConfig* opt, floating* params,
    const floating* grad, floating* state, int64_t step_count, double lr, ThreadTeam* team,
    AdamBounds* bounds,
) noexcept nogil:
    # Adam's step for the team (team_adam_step), its constants and where it writes.
    job.lay = lay
    job.bounds = bounds
    job.params = params
    job.grad = grad
    job.state = state
    job.is_double = floating is double
    job.n_threads = team.sync.n_threads
    adam_prepare(opt, params, step_count, lr, &job.step)


cdef bint team_adam_step(AdamJob* job, int64_t* step_count, ThreadTeam* team,
                         double grad_max) noexcept nogil:
    # optimizer_step's unchecked Adam / AdamW pass with the team's threads, from the max |grad|
    # the gradient's reduction took and the carried bounds (adam_step_is_safe), and the same
    # elementwise update, so the same bits. False if the bounds do not prove the step safe:
    # the caller then takes optimizer_step's checked passes, on this thread.
    cdef bint safe
    if job.is_double:
        safe = adam_step_is_safe(job.lay, &job.step, <const double*>job.params,
                                 <const double*>job.state, grad_max, job.bounds)
    else:
        safe = adam_step_is_safe(job.lay, &job.step, <const float*>job.params,
                                 <const float*>job.state, grad_max, job.bounds)
    if not safe:
        return False  # (a NaN maximum fails its tests there)
    cprop_team_run(&team.sync, adam_commit_job, job)
    step_count[0] += 1
    return True


cdef void parts_job(void* ctx, int tid) noexcept nogil:
    cdef PartsJob* job = <PartsJob*>ctx
    if job.is_double:
        part_share(job, tid, <double*>NULL)
    else:
        part_share(job, tid, <float*>NULL)


cdef void reduce_job(void* ctx, int tid) noexcept nogil:
    cdef PartsJob* job = <PartsJob*>ctx
    if job.is_double:
        reduce_share(job, tid, <double*>NULL)
    else:
        reduce_share(job, tid, <float*>NULL)


cdef double parted_gradient(
    const Layout* lay, const floating* params, const floating* X, const floating* T,
    const floating* sw, double sw_sum, const Py_ssize_t* idx, Py_ssize_t start,
    Py_ssize_t count, Py_ssize_t n_parts, floating* grad, floating* A, floating* D,
    Py_ssize_t chunk, bint want_grad, Py_ssize_t* work, ThreadTeam* team, double* grad_max,
) noexcept nogil:
    # batch_gradient for a batch cut into n_parts parts (grad: n_parts slots if want_grad);
    # grad_max (or NULL) gets max |grad| (NaN if any is NaN) when want_grad.
    cdef PartsJob job
    cdef void* own_A[1]
    cdef void* own_D[1]
    parts_job_init(&job, lay, params, X, T, sw, sw_sum, idx, start, count, n_parts, grad, A, D,
                   chunk, want_grad, work, team, own_A, own_D)
    if team == NULL:
        parts_job(&job, 0)
    else:
        cprop_team_run(&team.sync, parts_job, &job)
    if work != NULL and work[0] == INTERRUPTED:
        return NAN
    if want_grad:
        if team == NULL:
            reduce_job(&job, 0)
        else:
            cprop_team_run(&team.sync, reduce_job, &job)
        if grad_max != NULL:
            grad_max[0] = parts_grad_max(&job)
    return parts_loss(&job)


cdef void parts_job_init(
    PartsJob* job, const Layout* lay, const floating* params, const floating* X,
    const floating* T, const floating* sw, double sw_sum, const Py_ssize_t* idx,
    Py_ssize_t start, Py_ssize_t count, Py_ssize_t n_parts, floating* grad, floating* A,
    floating* D, Py_ssize_t chunk, bint want_grad, Py_ssize_t* work, ThreadTeam* team,
    void** own_A, void** own_D,
) noexcept nogil:
    # A parted batch's job (own_A, own_D: one-pointer arrays for a thread alone, team NULL).
    job.lay = lay
    job.params = params
    job.X = X
    job.T = T
    job.sw = sw
    job.idx = idx
    job.start = start
    job.count = count
    job.n_parts = n_parts
    job.chunk = chunk
    job.grad = grad
    job.want_grad = want_grad
    job.is_double = floating is double
    job.own_slots = False
    job.work = work
    job.abort = 0
    job.divisor = sw_sum if sw != NULL else <double>count
    if team == NULL:
        own_A[0] = A
        own_D[0] = D
        job.A = own_A
        job.D = own_D
        job.n_threads = 1
    else:
        team.A[0] = A
        team.D[0] = D
        job.A = team.A
        job.D = team.D
        job.n_threads = team.sync.n_threads


ctypedef struct AdamBatchJob:
    # One Adam / AdamW minibatch of a parted gradient in one meeting of the team (adam_batch).
    PartsJob parts
    AdamStep step
    const AdamBounds* bounds   # the carried bounds (only read during the job)
    void* params
    void* state
    cprop_team* sync           # NULL: a thread alone


cdef bint adam_batch_proven(const AdamBatchJob* job) noexcept nogil:
    # Whether the batch's step is taken in the job: its loss is finite and the carried bounds
    # prove Adam's unchecked pass safe for the summed gradient's max |grad|. Every thread
    # decides this from the same values the same way, the leader once more after the job.
    return isfinite(parts_loss(&job.parts)) and adam_carried_bounds_prove(
        &job.step, job.bounds, parts_grad_max(&job.parts), not job.parts.is_double)


cdef void adam_batch_share(AdamBatchJob* job, int tid, floating* typed) noexcept nogil:
    # Thread tid's share of the whole batch: its parts, its slice of their sum, its slice of
    # the step (each phase waits for every thread's previous one).
    cdef PartsJob* parts = &job.parts
    cdef Py_ssize_t n = parts.lay.n_params, i0, i1, t
    # (the other threads' slices of the parameters, which their last step wrote: the forward
    # pass reads them all)
    for t in range(parts.n_threads):
        if t != tid:
            thread_slice(n, t, parts.n_threads, &i0, &i1)
            cprop_team_prefetch(<floating*>job.params + i0, (i1 - i0) * sizeof(floating))
    part_share(parts, tid, typed)
    cprop_team_barrier(job.sync, 1)
    if CPROP_LOAD_ACQ(&parts.abort):
        return  # (the leader was interrupted)
    reduce_share(parts, tid, typed)
    cprop_team_barrier(job.sync, 2)
    if not adam_batch_proven(job):
        return
    thread_slice(n, tid, parts.n_threads, &i0, &i1)
    if i1 > i0:
        adam_commit(parts.lay, &job.step, <floating*>job.params,
                    <const floating*>parts.grad + reduced_slot(parts, tid) * n,
                    <floating*>job.state, i0, i1)


cdef void adam_batch_job(void* ctx, int tid) noexcept nogil:
    cdef AdamBatchJob* job = <AdamBatchJob*>ctx
    if job.parts.is_double:
        adam_batch_share(job, tid, <double*>NULL)
    else:
        adam_batch_share(job, tid, <float*>NULL)


cdef double adam_batch(
    const Layout* lay, const OptConfig* opt, floating* params, const floating* X,
    const floating* T, const floating* sw, double sw_sum, const Py_ssize_t* idx,
    Py_ssize_t start, Py_ssize_t count, Py_ssize_t n_parts, floating* grad, floating* A,
    floating* D, Py_ssize_t chunk, floating* state, int64_t* step_count, double lr,
    Py_ssize_t* work, ThreadTeam* team, AdamBounds* bounds, bint* stepped, double* grad_max,
) noexcept nogil:
    # One Adam / AdamW minibatch cut into n_parts parts (n_parts > 1), in one meeting of the
    # team (or by this thread alone, team NULL): the parts' gradients, a barrier, each thread's
    # slice of their sum into the slot of its own part (so no cache line another thread wrote
    # last changes hands twice), a barrier, and if the carried bounds prove the step safe
    # (adam_batch_proven), each thread's slice of Adam's unchecked pass from that slot. The
    # same arithmetic as parted_gradient + optimizer_step, so the same bits.
    # Returns the batch's mean loss (NaN if interrupted: work). stepped: whether the step was
    # taken (step_count and bounds have then moved on); if not, grad's first slot holds the
    # whole mean gradient and grad_max its max |grad|, for the caller's own step.
    cdef AdamBatchJob job
    cdef void* own_A[1]
    cdef void* own_D[1]
    cdef double loss, top
    parts_job_init(&job.parts, lay, params, X, T, sw, sw_sum, idx, start, count, n_parts,
                   grad, A, D, chunk, True, work, team, own_A, own_D)
    job.parts.own_slots = True
    job.bounds = bounds
    job.params = params
    job.state = state
    job.sync = NULL if team == NULL else &team.sync
    adam_prepare(opt, params, step_count[0], lr, &job.step)
    if team == NULL:
        adam_batch_job(&job, 0)
    else:
        cprop_team_run(&team.sync, adam_batch_job, &job)
    stepped[0] = False
    if work != NULL and work[0] == INTERRUPTED:
        return NAN
    loss = parts_loss(&job.parts)
    top = parts_grad_max(&job.parts)
    grad_max[0] = top
    if adam_batch_proven(&job):
        adam_bounds_carry(&job.step, bounds, bounds.P, top, bounds.M, bounds.V,
                          floating is float)
        step_count[0] += 1
        stepped[0] = True
    else:
        gather_reduced(&job.parts, <floating*>NULL)
    return loss


cdef class Team:
    """Threads that share one network's batches during a fit (``MLP.fit(n_threads=...)``).

    ``Team(plan, n_threads, chunk, dtype)``: the caller's thread and ``n_threads - 1`` workers,
    each worker with its own workspaces of ``chunk`` rows. Use it as a context manager: the
    workers start on entry and are stopped and joined on exit. One fit at a time.
    """

    cdef ThreadTeam c
    cdef readonly int n_threads
    cdef readonly Py_ssize_t chunk
    cdef readonly Py_ssize_t total_width
    cdef readonly object dtype
    cdef object _buffers
    cdef object _threads

    def __cinit__(self, Plan plan, int n_threads, Py_ssize_t chunk, dtype):
        cdef int t
        cdef cnp.ndarray a, d
        if not 1 <= n_threads <= MAX_PARTS_C:
            raise ValueError(f"n_threads: expected 1 to {MAX_PARTS_C} (a batch has at most "
                             f"{MAX_PARTS_C} parts), got {n_threads}")
        if chunk < 1:
            raise ValueError(f"chunk: expected >= 1 rows, got {chunk}")
        self.dtype = np.dtype(dtype)
        if self.dtype != np.float64 and self.dtype != np.float32:
            raise ValueError(f"dtype: expected float64 or float32, got {self.dtype}")
        self.n_threads = n_threads
        self.chunk = chunk
        self.total_width = plan.total_width
        self._threads = []
        self._buffers = []
        self.c.A = <void**>malloc(n_threads * sizeof(void*))
        self.c.D = <void**>malloc(n_threads * sizeof(void*))
        if self.c.A == NULL or self.c.D == NULL:
            raise MemoryError()
        cprop_team_init(&self.c.sync, n_threads)
        self.c.A[0] = NULL
        self.c.D[0] = NULL
        for t in range(1, n_threads):
            a = np.empty(chunk * plan.total_width, dtype=self.dtype)
            d = np.empty(chunk * plan.total_width, dtype=self.dtype)
            self._buffers.append((a, d))
            self.c.A[t] = cnp.PyArray_DATA(a)
            self.c.D[t] = cnp.PyArray_DATA(d)

    def __dealloc__(self):
        free(self.c.A)
        free(self.c.D)

    def _work(self, int tid):
        with nogil:
            cprop_team_work(&self.c.sync, tid)

    def __enter__(self):
        if self._threads:
            raise RuntimeError("this Team is already running")
        for t in range(1, self.n_threads):
            thread = threading.Thread(target=self._work, args=(t,), daemon=True,
                                      name=f"cprop-team-{t}")
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc):
        if self._threads:
            cprop_team_stop(&self.c.sync)
            for thread in self._threads:
                thread.join()
            self._threads = []
            cprop_team_init(&self.c.sync, self.n_threads)
        return False

    cdef ThreadTeam* for_call(self, Plan plan, Py_ssize_t chunk, bint is_double) except NULL:
        # The team for one Plan call, after the checks that keep its workspaces in bounds.
        if chunk != self.chunk or plan.total_width != self.total_width:
            raise ValueError(f"team: built for workspaces of {self.chunk} rows x "
                             f"{self.total_width}, the call has {chunk} x {plan.total_width}")
        if is_double != (self.dtype == np.float64):
            raise ValueError(f"team: built for {self.dtype}, the call is not")
        if self.n_threads > 1 and len(self._threads) != self.n_threads - 1:
            raise RuntimeError("team: not started (use it as a context manager)")
        return &self.c
