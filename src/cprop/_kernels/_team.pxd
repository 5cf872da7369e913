# One network's fit on several threads (MLP.fit(n_threads=...)): the C team of _team.h, and the
# per-thread workspaces its jobs use. _mlp.pyx's batch_gradient is the one user: it cuts a large
# batch into fixed parts (batch_parts) whose gradients are added in a fixed order, so the
# threads only change who computes each part, never the result.

cdef extern from "_team.h" nogil:
    ctypedef void (*cprop_team_job)(void* ctx, int thread_id) noexcept nogil
    ctypedef struct cprop_team:
        int n_threads
    void cprop_team_init(cprop_team* team, int n_threads)
    void cprop_team_work(cprop_team* team, int thread_id)
    void cprop_team_run(cprop_team* team, cprop_team_job job, void* ctx)
    void cprop_team_stop(cprop_team* team)
    void cprop_team_barrier(cprop_team* team, long k)
    void cprop_team_prefetch(const void* p, size_t bytes)
    long CPROP_LOAD_ACQ(long* p)
    void CPROP_STORE_REL(long* p, long value)


# A team and a workspace pair (A, D) for each of its threads; thread 0 (the leader, the thread
# that called fit) uses the network's own, filled in at each call.
ctypedef struct ThreadTeam:
    cprop_team sync
    void** A
    void** D
