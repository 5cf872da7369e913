/* A team of threads for one network's fit (MLP.fit(n_threads=...)): the caller's thread leads,
 * the others were started by Python (threading.Thread, so no pthreads/Win32 code here) and wait
 * inside cprop_team_work with the GIL released. The leader posts a job (a function and its
 * context), runs its own share as thread 0, and waits until every worker has run its share.
 * Which thread runs which share never changes a result: the jobs write disjoint outputs that are
 * combined in a fixed order afterwards (see _team.pxi).
 *
 * Waiting spins (with a pause instruction) for a short while, then yields the CPU, then sleeps in
 * short naps, so a worker costs little while the leader is away (between two fit calls, in a
 * callback, or when the machine is oversubscribed) and answers within a microsecond while the
 * leader is posting jobs back to back.
 *
 * Only counters shared between the threads are touched through the atomic builtins (GCC/Clang
 * __atomic, MSVC _Interlocked*); the jobs' data are published by them (release / acquire).
 */
#ifndef CPROP_TEAM_H
#define CPROP_TEAM_H

#include <stddef.h>

#if defined(_MSC_VER) && !defined(__clang__)
/* (the Interlocked functions are full barriers; YieldProcessor is pause on x64, yield on ARM64) */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <intrin.h>
#include <windows.h>
#define CPROP_LOAD_ACQ(p) _InterlockedOr((volatile long*)(p), 0)
#define CPROP_STORE_REL(p, v) _InterlockedExchange((volatile long*)(p), (long)(v))
#define CPROP_FETCH_ADD(p, v) _InterlockedExchangeAdd((volatile long*)(p), (long)(v))
#define CPROP_CPU_RELAX() YieldProcessor()
#define CPROP_YIELD() SwitchToThread()
#define CPROP_NAP() Sleep(1)
#if defined(_M_X64) || defined(_M_IX86)
#define CPROP_PREFETCH(p) _mm_prefetch((const char*)(p), _MM_HINT_T0)
#else
#define CPROP_PREFETCH(p) ((void)(p))
#endif
#else
#include <sched.h>
#include <time.h>
#define CPROP_LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define CPROP_STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define CPROP_FETCH_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#if defined(__x86_64__) || defined(__i386__)
#define CPROP_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPROP_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPROP_CPU_RELAX() ((void)0)
#endif
#define CPROP_YIELD() sched_yield()
#define CPROP_PREFETCH(p) __builtin_prefetch((p), 0, 3)
static void cprop_nap(void)
{
    struct timespec ts = {0, 50000};  /* 50 us */
    nanosleep(&ts, NULL);
}
#define CPROP_NAP() cprop_nap()
#endif

typedef void (*cprop_team_job)(void* ctx, int thread_id);

typedef struct {
    long generation;      /* bumped by the leader to post a job (or the stop) */
    long finished;        /* workers that have run the current job */
    long arrived;         /* arrivals at the current job's barriers (cprop_team_barrier) */
    long stop;            /* set with the last generation: the workers return */
    int n_threads;        /* the leader and its workers */
    cprop_team_job job;
    void* ctx;
} cprop_team;

static void cprop_team_init(cprop_team* team, int n_threads)
{
    team->generation = 0;
    team->finished = 0;
    team->arrived = 0;
    team->stop = 0;
    team->n_threads = n_threads;
    team->job = NULL;
    team->ctx = NULL;
}

enum { CPROP_WAIT_CHANGE, CPROP_WAIT_EQUAL, CPROP_WAIT_AT_LEAST };

/* Wait until *counter != value (CPROP_WAIT_CHANGE), == value (CPROP_WAIT_EQUAL) or >= value
 * (CPROP_WAIT_AT_LEAST); returns the value read. */
static long cprop_team_wait(long* counter, long value, int mode)
{
    long now;
    long spins = 0;
    for (;;) {
        now = CPROP_LOAD_ACQ(counter);
        if (mode == CPROP_WAIT_CHANGE ? now != value
                : (mode == CPROP_WAIT_EQUAL ? now == value : now >= value))
            return now;
        ++spins;
        if (spins < 256)          /* ~ 2-20 us, by the pause instruction's latency */
            CPROP_CPU_RELAX();
        else if (spins < 1256)    /* then give the core away (to the one waited for?) */
            CPROP_YIELD();
        else                      /* the leader is away (Python, another call): nap */
            CPROP_NAP();
    }
}

/* A worker's life (thread_id >= 1): run each posted job until the stop. */
static void cprop_team_work(cprop_team* team, int thread_id)
{
    long seen = 0;
    for (;;) {
        seen = cprop_team_wait(&team->generation, seen, CPROP_WAIT_CHANGE);
        if (CPROP_LOAD_ACQ(&team->stop))
            return;
        team->job(team->ctx, thread_id);
        CPROP_FETCH_ADD(&team->finished, 1);
    }
}

/* The leader: run job on every thread of the team (itself as thread 0) and wait for all. */
static void cprop_team_run(cprop_team* team, cprop_team_job job, void* ctx)
{
    if (team->n_threads <= 1) {
        job(ctx, 0);
        return;
    }
    team->job = job;
    team->ctx = ctx;
    CPROP_STORE_REL(&team->arrived, 0);
    CPROP_STORE_REL(&team->finished, 0);
    CPROP_FETCH_ADD(&team->generation, 1);   /* publishes job, ctx, arrived and finished = 0 */
    job(ctx, 0);
    cprop_team_wait(&team->finished, team->n_threads - 1, CPROP_WAIT_EQUAL);
}

/* Inside a job: return once every thread of the team has called this for the k-th time in
 * this job (k = 1, 2, ... in turn; every thread must reach every barrier of the job). What
 * any thread wrote before its call is visible to every thread after theirs. team NULL (a
 * thread alone) or a team of one: nothing to wait for. */
static void cprop_team_barrier(cprop_team* team, long k)
{
    if (team == NULL || team->n_threads <= 1)
        return;
    CPROP_FETCH_ADD(&team->arrived, 1);
    cprop_team_wait(&team->arrived, k * team->n_threads, CPROP_WAIT_AT_LEAST);
}

/* The leader: release the workers (each returns from cprop_team_work). */
static void cprop_team_stop(cprop_team* team)
{
    CPROP_STORE_REL(&team->stop, 1);
    CPROP_FETCH_ADD(&team->generation, 1);
}

/* Ask for the cache lines of p .. p + bytes - 1 (for reading) before a pass needs them: lines
 * another thread wrote last arrive one cache-to-cache transfer at a time when the pass finds
 * them missing; requested together, their transfers overlap. */
static void cprop_team_prefetch(const void* p, size_t bytes)
{
    const char* c = (const char*)p;
    size_t i;
    for (i = 0; i < bytes; i += 64)
        CPROP_PREFETCH(c + i);
}

#endif /* CPROP_TEAM_H */
