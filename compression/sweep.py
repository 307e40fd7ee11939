"""The sweep executor: every sweep point and search trial is an independent job handed to it.

`executor.map(fn, configs, progress=, should_stop=)` runs `fn(config)` for each config and yields a
`SweepPoint` per config as each finishes. Engines:

    InProcessExecutor   one after another in the calling thread (the default)
    FuturesExecutor     any concurrent.futures.Executor (threads, processes)
    DaskExecutor        a Dask cluster: `local[:N]` starts a LocalCluster of N worker processes on
                        this machine, `tcp://HOST:8786` joins a scheduler the user started

`COMPRESSION_CLUSTER` (or `--cluster`) picks the engine for the app and the CLI (`from_setting`).
Workers compute and send back results and artifact bytes (`run_job`); only the caller's process
writes the run store and the search study, so nothing is written twice and SQLite stays
single-writer. A worker killed mid-job: Dask reruns that job on another worker, and the caller still
receives (and stores) each job's result exactly once.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol

from compression import CompressionError

@dataclass(frozen=True)
class SweepPoint:
    """The outcome of one point of a sweep."""
    index: int                 # position of the config in the sequence given to map()
    config: Any
    result: Any = None         # what fn(config) returned (None when it failed)
    error: str | None = None   # the CompressionError message when this config was refused
    seconds: float = 0.0       # wall time of fn(config)

    @property
    def ok(self) -> bool:
        return self.error is None


Progress = Callable[[dict], None]
ShouldStop = Callable[[], bool]


class SweepExecutor(Protocol):
    """Runs the points of a sweep as independent jobs.

    `map` yields one SweepPoint per config as each finishes (completion order; `index` says which
    config it was), calls `progress({"step": done, "steps": total, "index": i, ...})` after each,
    and checks `should_stop()` before starting each point: when it answers True no new point
    starts, the running ones finish, and what was done is yielded. A CompressionError raised by
    fn (a config the method refuses) becomes that point's `error`; any other exception is a bug
    and propagates.
    """

    def map(self, fn: Callable[[Any], Any], configs: Iterable[Any], *,
            progress: Progress | None = None, should_stop: ShouldStop | None = None) -> Iterator[SweepPoint]:
        ...


def _run_point(fn: Callable[[Any], Any], index: int, config: Any) -> SweepPoint:
    start = time.perf_counter()
    try:
        result = fn(config)
    except CompressionError as exc:
        return SweepPoint(index, config, error=str(exc), seconds=time.perf_counter() - start)
    return SweepPoint(index, config, result=result, seconds=time.perf_counter() - start)


def _report(progress: Progress | None, point: SweepPoint, done: int, total: int) -> None:
    if progress is not None:
        progress({"step": done, "steps": total, "index": point.index, "seconds": point.seconds,
                  "error": point.error})


class InProcessExecutor:
    """Points one after another, in order, in the calling thread (the default).

    Inside a ui.jobs worker this is what a sweep wants: the job already holds the device, and
    a point that trains can poll the same `should_stop` for a quicker Stop.
    """

    def map(self, fn, configs, *, progress=None, should_stop=None):
        configs = list(configs)
        for done, (i, config) in enumerate(enumerate(configs), start=1):
            if should_stop is not None and should_stop():
                return
            point = _run_point(fn, i, config)
            _report(progress, point, done, len(configs))
            yield point


class FuturesExecutor:
    """Points on a `concurrent.futures.Executor`: a thread or process pool, or a distributed
    engine's executor (e.g. dask.distributed's `client.get_executor()`). With a process or
    remote pool, `fn` and the configs must be picklable (a module-level function, plain data).

    At most `max_pending` points are submitted at a time, so Stop takes effect quickly and a
    long sweep does not queue everything up front.
    """

    def __init__(self, pool: cf.Executor, max_pending: int = 4):
        if max_pending < 1:
            raise CompressionError(f"max_pending={max_pending} is out of range: expected an integer >= 1")
        self.pool = pool
        self.max_pending = max_pending

    def _submit(self, fn, i, config):
        return self.pool.submit(_run_point, fn, i, config)

    def _wait(self, pending):
        finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        return finished, pending

    def map(self, fn, configs, *, progress=None, should_stop=None):
        todo = list(enumerate(configs))
        total, done = len(todo), 0
        pending: set[cf.Future] = set()
        todo.reverse()  # pop() from the end = first config first
        try:
            while todo or pending:
                stopping = should_stop is not None and should_stop()
                while todo and not stopping and len(pending) < self.max_pending:
                    i, config = todo.pop()
                    pending.add(self._submit(fn, i, config))
                if not pending:
                    return
                finished, pending = self._wait(pending)
                for future in finished:
                    point = future.result()  # re-raises a bug in fn here
                    done += 1
                    _report(progress, point, done, total)
                    yield point
        finally:
            for future in pending:
                future.cancel()


_default: SweepExecutor = InProcessExecutor()


def default_executor() -> SweepExecutor:
    """The executor pages and commands use for sweeps; a deployment can swap it at start-up."""
    return _default


def set_default_executor(executor: SweepExecutor) -> SweepExecutor:
    """Make `executor` the one every sweep uses; returns the previous one."""
    global _default
    previous, _default = _default, executor
    return previous


class DaskExecutor(FuturesExecutor):
    """Points on a Dask cluster through its `distributed.Client`. `fn` and the configs travel by
    pickle (module-level functions, plain data). A job whose worker dies is rerun elsewhere by
    Dask (its scheduler's allowed-failures); GPU jobs (`needs_gpu(config)`) go only to workers
    started with `--resources GPU=1`."""

    def __init__(self, client: Any, max_pending: int | None = None, *, describe: str = "",
                 needs_gpu: Callable[[Any], bool] | None = None, cluster: Any = None):
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        super().__init__(pool=None, max_pending=max_pending or 2 * workers)
        self.client, self.cluster, self.describe = client, cluster, describe
        self.needs_gpu = needs_gpu or (lambda config: getattr(config, "device", "cpu") == "cuda")

    def _submit(self, fn, i, config):
        resources = {"GPU": 1} if self.needs_gpu(config) else None
        return self.client.submit(_run_point, fn, i, config, pure=False, resources=resources)

    def _wait(self, pending):
        from distributed import wait
        done = wait(list(pending), return_when="FIRST_COMPLETED")
        return set(done.done), set(done.not_done)

    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# ---------------------------------------------------------------------------------------------
# COMPRESSION_CLUSTER: which engine

def parse_setting(text: str | None) -> tuple[str, Any]:
    """'' / None -> ("in-process", None); 'local' / 'local:N' -> ("local", N); 'tcp://h:p' -> ("tcp", text)."""
    text = (text or "").strip()
    if not text or text in ("in-process", "none"):
        return "in-process", None
    if text == "local" or text.startswith("local:"):
        n = text.partition(":")[2] or str(max(1, os.cpu_count() or 1))
        if not n.isdigit() or not 1 <= int(n) <= 256:
            raise CompressionError(f"cluster {text!r}: local:N needs N workers in [1, 256], got {n!r}")
        return "local", int(n)
    if text.startswith("tcp://") and ":" in text[6:]:
        return "tcp", text
    raise CompressionError(f"cluster {text!r} not understood: use local, local:N or tcp://HOST:8786")


def connect_timeout() -> float:
    """Seconds to wait for a tcp:// scheduler: $COMPRESSION_CLUSTER_TIMEOUT, default 5."""
    text = os.environ.get("COMPRESSION_CLUSTER_TIMEOUT", "").strip()
    try:
        value = float(text) if text else 5.0
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise CompressionError(f"COMPRESSION_CLUSTER_TIMEOUT={text!r} out of range: seconds in (0, 3600]")
    return value


def from_setting(text: str | None = None, *, timeout: float | None = None) -> SweepExecutor:
    """The executor COMPRESSION_CLUSTER (or `text`) names. A scheduler that cannot be reached
    within `timeout` (default: connect_timeout()) raises CompressionError with one line."""
    kind, value = parse_setting(text if text is not None else os.environ.get("COMPRESSION_CLUSTER"))
    if kind == "in-process":
        return InProcessExecutor()
    from distributed import Client, LocalCluster
    if kind == "local":
        threads = max(1, (os.cpu_count() or 1) // value)
        cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None,
                               env={"OMP_NUM_THREADS": str(threads), "COMPRESSION_TORCH_THREADS": str(threads)})
        return DaskExecutor(Client(cluster), describe=f"Dask LocalCluster, {value} worker processes x "
                                                       f"{threads} torch thread(s)", cluster=cluster)
    timeout = connect_timeout() if timeout is None else timeout
    try:
        client = Client(value, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise CompressionError(f"cluster {value} cannot be reached ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:120] if str(exc) else 'no answer'})") from None
    return DaskExecutor(client, describe=f"Dask scheduler {value}, {len(client.scheduler_info()['workers'])} workers")


# ---------------------------------------------------------------------------------------------
# a job any engine can run: one registered method or pipeline on one model reference

def _default_runtime() -> str:
    from compression.runtimes import default_runtime
    return default_runtime()


@dataclass(frozen=True)
class Job:
    """Plain data, so it travels to a worker: what to run and where."""
    reference: str                 # any model reference (compression.refs)
    dataset: str | None            # dataset name (None: the reference's own)
    spec: str                      # a method spec or a pipeline ("prune:structured:0.5,quantize:uniform:8")
    device: str = "cpu"
    limit: int | None = None       # test images
    subset: int | None = None      # training images per epoch
    seed: int = 0
    kernel: bool = True            # measure the int8 kernel where one runs
    group: str | None = None       # the sweep or study this job belongs to
    pipeline: bool = False         # run even a one-step spec as a pipeline (stored as method "pipeline")
    runtime: str = field(default_factory=_default_runtime)  # where latency is timed (compression.runtimes):
    #                                the caller's default when the job is made, so a worker times there too


@dataclass
class JobResult:
    job: Job
    result: Any                    # compression.metrics.Result (final step of a pipeline)
    artifact: bytes                # the container file: result.metrics.size_bytes == len(artifact)
    worker_pid: int = 0


def run_job(job: Job, *, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> JobResult:
    """Run a job (in this process or on a worker) without writing any store. `progress` and
    `should_stop` reach the method's own loop (epochs, pruning cycles); only an in-process caller
    can give them (see run_jobs)."""
    threads = os.environ.get("COMPRESSION_TORCH_THREADS")
    if threads:
        import torch
        torch.set_num_threads(int(threads))
    from compression.device import steady_allocator
    steady_allocator()  # once per process: a cluster worker's forwards reuse pages as the app's do
    from compression.pipeline.spec import split_steps
    parts = split_steps(job.spec)
    if len(parts) == 1 and not job.pipeline:
        from compression.knobs import parse_spec
        from compression.methods import compress
        method, config = parse_spec(parts[0])
        run = compress(job.reference, job.dataset, method.name, config, device=job.device, limit=job.limit,
                       seed=job.seed, subset=job.subset, options={"kernel": job.kernel, "runtime": job.runtime},
                       progress=progress,
                       should_stop=should_stop)
        result, artifact = run.result, run.artifact
    else:
        from compression.pipeline import PipelineConfig, parse_steps, run_pipeline
        from compression.refs import resolve
        resolved = resolve(job.reference, job.dataset, device=job.device)
        cfg = PipelineConfig(parse_steps(job.spec), seed=job.seed, subset=job.subset)
        final = None
        for final in run_pipeline(resolved, resolved.dataset, cfg, device=job.device, limit=job.limit,
                                  progress=progress, should_stop=should_stop, runtime=job.runtime):
            pass
        if final is None:
            raise CompressionError(f"{job.spec}: stopped before its first step finished")
        result, artifact = final.result, final.artifact
    if job.group:
        result.extra["group"] = job.group
    return JobResult(job, result, artifact, os.getpid())


def run_jobs(jobs: Iterable[Job], *, executor: SweepExecutor | None = None, store: Any = True,
             progress: Progress | None = None, should_stop: ShouldStop | None = None,
             job_progress: Progress | None = None, job_should_stop: ShouldStop | None = None,
             prepare: Callable[[SweepPoint], None] | None = None,
             group: str | None = None) -> Iterator[SweepPoint]:
    """Run jobs on the executor (default: the configured one) and store each finished result here,
    once, with its artifact file: point.result is the JobResult (its Result's extra has "run_id" and
    "artifact" when stored), None with point.error when the job's config was refused.

    `should_stop` is checked before each job starts. `job_progress` (epochs, cycles) and
    `job_should_stop` (Stop in the middle of a job: its partial result is still a result) reach the
    method inside each job when the jobs run in this process; a cluster's workers get neither.
    `prepare(point)` has the caller's last word on a finished result before it is stored (the
    config as a page has always stored it, a path the user asked for).

    Every result stored here gets the group id `group` (compression.run_labels.new_group_id); without
    one, the jobs of this call share a new "sweep:<id>" when there is more than one (a caller that
    calls this several times for one search passes its own)."""
    from compression.methods import save_run
    from compression.run_labels import new_group_id
    executor = executor or default_executor()
    jobs = list(jobs)
    if group is None and store and len(jobs) > 1:
        group = new_group_id("sweep")
    fn: Callable[[Job], JobResult] = run_job
    if isinstance(executor, InProcessExecutor) and (job_progress is not None or job_should_stop is not None):
        fn = functools.partial(run_job, progress=job_progress, should_stop=job_should_stop)
    for point in executor.map(fn, jobs, progress=progress, should_stop=should_stop):
        if point.ok:
            out: JobResult = point.result
            if prepare is not None:
                prepare(point)
            if store:
                save_run(out.result, out.artifact, store=store, group=group)
            out.result.extra["worker_pid"] = out.worker_pid
        yield point
