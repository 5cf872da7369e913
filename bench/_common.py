"""Shared pieces of the benchmark suite: timing, thread control, environment, the C loop.

Imported by ``bench/run.py`` and the workload modules (``_w1.py``, ``_w2.py``, ``_w3.py``); not a
public API. Nothing here asserts a speed.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
C_DIR = BENCH_DIR / "c_loop"

# Set CPROP_BENCH_NO_THREADPOOLCTL=1 to behave as if threadpoolctl were not installed (then only
# the environment variables set for each worker process control the BLAS threads).
_NO_TPC = os.environ.get("CPROP_BENCH_NO_THREADPOOLCTL") == "1"


def log(*args) -> None:
    """Progress lines go to stderr; stdout carries only the report."""
    print(*args, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------

def measure(run, reset=None, *, repeats: int, budget_s: float, long_s: float = 2.0) -> list[float]:
    """Seconds of each timed call of ``run()``; ``reset()`` (untimed) runs before every call.

    The first call is an untimed warm-up, unless it took ``long_s`` or more (then first-call
    effects are negligible and it counts as the first timed run). Then timed calls follow until
    there are ``repeats`` of them or ``budget_s`` seconds have been spent; at least one.
    """
    if reset is not None:
        reset()
    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    times = [first] if first >= long_s else []
    spent = first
    while len(times) < repeats and (not times or spent < budget_s):
        if reset is not None:
            reset()
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
    return times


def measure_many(methods: dict, *, repeats: int, budget_s: float, long_s: float = 2.0,
                 settle_s: float = 0.0) -> dict[str, list[float]]:
    """``measure`` for several methods at once, interleaved: round after round, each method once.

    ``methods`` maps a key to ``(run, reset)``. Each method gets an untimed warm-up (unless it
    takes ``long_s`` or more: then it is its first timed run); then rounds follow until every
    method has ``repeats`` timed runs or ``budget_s`` seconds per method have been spent (each
    method has at least one). Interleaving means a burst of load from another process hits one
    round of every method rather than every run of one method, and the best of the rounds is
    what each method does on a quiet machine.

    ``settle_s``: sleep this long (untimed) before each run. With more than one thread, BLAS
    and OpenMP workers keep spinning for up to ~0.1 s after their last call; without a pause,
    the workers of the previous method's pool (NumPy's OpenBLAS, SciPy's, PyTorch's OpenMP)
    would compete with the next method's threads for the same cores.
    """
    times = {k: [] for k in methods}
    spent = 0.0
    for key, (run, reset) in methods.items():
        if reset is not None:
            reset()
        time.sleep(settle_s)
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
        spent += dt
        if dt >= long_s:
            times[key].append(dt)
    while True:
        todo = [k for k in methods if len(times[k]) < repeats]
        if not todo or (spent >= budget_s * len(methods) and all(times.values())):
            return times
        for key in todo:
            run, reset = methods[key]
            if reset is not None:
                reset()
            time.sleep(settle_s)
            t0 = time.perf_counter()
            run()
            dt = time.perf_counter() - t0
            times[key].append(dt)
            spent += dt


def summary(times: list[float], per: float) -> dict:
    """Best and median of a list of run times, each divided by ``per`` (steps, samples, ...)."""
    ts = sorted(t / per for t in times)
    return {"runs": len(ts), "best": ts[0], "median": ts[len(ts) // 2],
            "all": [t / per for t in times]}


# ------------------------------------------------------------------------------------------------
# Threads
# ------------------------------------------------------------------------------------------------

THREAD_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def worker_env(n_threads: int) -> dict:
    """The environment of a worker process that runs everything at ``n_threads`` threads."""
    env = dict(os.environ)
    for var in THREAD_ENV_VARS:
        env[var] = str(n_threads)
    return env


def have_threadpoolctl() -> bool:
    if _NO_TPC:
        return False
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


class ThreadControl:
    """Limit every thread pool of this (worker) process to ``n`` threads and describe them.

    The worker was started with OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS = n;
    on top of that, threadpoolctl (if installed) limits every BLAS/OpenMP pool it finds, and
    ``torch.set_num_threads(n)`` sets PyTorch's intra-op pool. Import the libraries first, so
    that their pools are loaded when the limits are applied.
    """

    def __init__(self, n: int):
        self.n = n
        self._limiter = None
        if have_threadpoolctl():
            import threadpoolctl

            self._limiter = threadpoolctl.threadpool_limits(limits=n)
        try:
            import torch

            torch.set_num_threads(n)
        except ImportError:
            pass

    def describe(self) -> dict:
        """What each library actually reports after the limits."""
        info = {"requested": self.n,
                "env": {v: os.environ.get(v) for v in THREAD_ENV_VARS},
                "threadpoolctl": have_threadpoolctl()}
        if have_threadpoolctl():
            import threadpoolctl

            pools = []
            for p in threadpoolctl.threadpool_info():
                pools.append({"user_api": p.get("user_api"), "internal_api": p.get("internal_api"),
                              "num_threads": p.get("num_threads"),
                              "path": p.get("filepath"),
                              "version": p.get("version")})
            info["pools"] = pools
        try:
            import torch

            info["torch"] = torch.get_num_threads()
        except ImportError:
            pass
        return info


def pools_by_owner(desc: dict) -> dict[str, str]:
    """Thread settings per peer, one short string each, from ThreadControl.describe()."""
    env = desc.get("env", {})
    pools = desc.get("pools", [])

    def pool(where: str, api: str = "blas"):
        for p in pools:
            if p.get("user_api") == api and "/" + where in (p.get("path") or ""):
                return f"{p['internal_api']} {p['num_threads']}"
        return None

    via_env = f"OPENBLAS_NUM_THREADS={env.get('OPENBLAS_NUM_THREADS')}"
    numpy_s = pool("numpy") or via_env
    out = {"numpy": f"BLAS: {numpy_s}", "sklearn": f"NumPy's BLAS: {numpy_s}"}
    sk_omp = pool("scikit_learn", "openmp")
    if sk_omp:
        out["sklearn"] += f"; its OpenMP: {sk_omp}"
    if "torch" in desc:
        out["torch"] = f"torch.get_num_threads() = {desc['torch']}"
    try:
        from cprop._kernels import _mlp

        chosen = _mlp.blas_library()["library"]
    except (ImportError, AttributeError):
        chosen = "scipy.linalg.cython_blas"
    if chosen == "scipy-openblas32":
        blas_s = pool("scipy_openblas32") or via_env
        out["cprop"] = (f"kernels: 1 (no OpenMP); BLAS (if called): scipy-openblas32's "
                        f"{blas_s}")
    elif chosen == "mkl":
        blas_s = pool("libmkl_rt") or f"MKL_NUM_THREADS={env.get('MKL_NUM_THREADS')}"
        out["cprop"] = f"kernels: 1 (no OpenMP); BLAS (if called): MKL's {blas_s}"
    else:
        blas_s = pool("scipy.libs") or pool("scipy/") or via_env
        out["cprop"] = f"kernels: 1 (no OpenMP); SciPy's BLAS (if called): {blas_s}"
    out["c"] = "1 (single-threaded C)"
    return out


# ------------------------------------------------------------------------------------------------
# Environment header
# ------------------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return getattr(mod, "__version__", "?")


def numpy_blas() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no mode="dicts"
        return "unknown"


def cc_version() -> str | None:
    cc = c_compiler()
    if cc is None:
        return None
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.splitlines()[0].strip() if out.stdout else cc
    except (OSError, subprocess.SubprocessError):
        return None


def cprop_build() -> str | None:
    """The compiler flags cprop's kernels were built with, if cprop records them."""
    try:
        from cprop._config import config

        info = config()
    except Exception:
        return None
    build = info.get("build") if isinstance(info, dict) else None
    if not isinstance(build, dict):
        return None
    keys = ("compiler", "extra_compile_args", "cflags", "flags", "openmp")
    parts = [f"{k}={build[k]}" for k in keys if k in build]
    return "; ".join(str(p) for p in parts) or None


def _cpu_times():
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)   # idle + iowait
    return sum(fields), idle


def cpu_busy(seconds: float = 0.5) -> float | None:
    """Fraction of all CPUs busy (with other processes) over ``seconds`` while this one sleeps.

    Linux only (None elsewhere). A 2-thread run on a 2-CPU machine with another process busy
    measures contention, not the code: the report warns when this is above 10%.
    """
    a = _cpu_times()
    if a is None:
        return None
    time.sleep(seconds)
    b = _cpu_times()
    total, idle = b[0] - a[0], b[1] - a[1]
    return None if total <= 0 else max(0.0, 1.0 - idle / total)


class LoadMeter:
    """How much of the machine *other* processes used while this process worked (Linux only).

    ``/proc/stat`` gives the CPU time all processes used; ``os.times()`` this process's own
    (every thread, plus waited-for children such as the C loops). The difference, over the
    elapsed time times the number of CPUs, is the share other processes took: 0 on an idle
    machine. ``stop()`` returns it (None where /proc/stat is missing).
    """

    def __init__(self):
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start()

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def start(self) -> None:
        self._stat, self._own0, self._t0 = _cpu_times(), self._own(), time.perf_counter()

    def stop(self) -> float | None:
        stat, own, t1 = _cpu_times(), self._own(), time.perf_counter()
        if stat is None or self._stat is None or t1 <= self._t0:
            return None
        busy = ((stat[0] - self._stat[0]) - (stat[1] - self._stat[1])) / self._hz
        other = busy - (own - self._own0)
        return max(0.0, other / ((t1 - self._t0) * (os.cpu_count() or 1)))


def environment() -> dict:
    import cprop

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in load] if load else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": numpy_blas(),
        "scipy": _version("scipy"),
        "torch": _version("torch"),
        "sklearn": _version("sklearn"),
        "cprop": cprop.__version__,
        "cprop_path": os.path.dirname(cprop.__file__),
        "cprop_build": cprop_build(),
        "threadpoolctl": _version("threadpoolctl") if have_threadpoolctl() else None,
        "cc": cc_version(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }


# ------------------------------------------------------------------------------------------------
# The hand-written C loops
# ------------------------------------------------------------------------------------------------

C_FLAGS = ["-O3", "-march=native"]
# The portable build: what code compiled without -march=native (as cprop's wheels are) reaches.
C_FLAGS_PORTABLE = ["-O3"]


def c_compiler() -> str | None:
    for cand in (os.environ.get("CC"), "cc", "gcc"):
        if cand and shutil.which(cand.split()[0]):
            return cand
    return None


class CLoops:
    """Copies bench/c_loop/*.c to a temporary directory and compiles them there on demand."""

    def __init__(self):
        self.cc = c_compiler()
        self.dir = Path(tempfile.mkdtemp(prefix="cprop-bench-c-"))
        self.error: str | None = None if self.cc else "no C compiler (cc/gcc) on PATH"

    def _cmd(self, source, defines, extra_flags, native):
        flags = C_FLAGS if native else C_FLAGS_PORTABLE
        return [*(self.cc or "cc").split(), *flags, *extra_flags, *(f"-D{d}" for d in defines),
                source]

    def build(self, source: str, name: str, defines=(), extra_flags=(),
              native: bool = True) -> Path | None:
        """Compile c_loop/<source> to <tmp>/<name> (cc -O3 [-march=native]); None on failure."""
        if self.cc is None:
            return None
        src = self.dir / source
        if not src.exists():
            shutil.copy(C_DIR / source, src)
        exe = self.dir / name
        cmd = [*self._cmd(str(src), defines, extra_flags, native), "-o", str(exe), "-lm"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            self.error = f"{' '.join(cmd)} failed: {res.stderr.strip()[:500]}"
            log("C loop:", self.error)
            return None
        return exe

    def command(self, source: str, defines=(), extra_flags=(), native: bool = True) -> str:
        return " ".join([*self._cmd(source, defines, extra_flags, native), "-lm"])

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def parse_c_output(text: str) -> dict[str, list[float]]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if parts:
            out[parts[0]] = [float(v) for v in parts[1:]]
    return out
