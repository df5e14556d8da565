"""Where trials run: local worker processes, or Ray tasks on a cluster (``--backend ray``).

:func:`benchmarks.runner.run_trials` hands the trials still to do to a backend as :class:`Job`
objects and polls it: :meth:`Backend.poll` returns the trials that ended (their
:class:`~benchmarks.runner.TrialOutcome`) and the progress reported since the last call
(``(job index, global step)`` pairs). Every job runs :func:`benchmarks.runner.run_trial`, which
writes the trial's ``result.json`` (or ``error.json``) itself, so a finished trial is on disk
whatever happens to the others or to the caller.

- :class:`ProcessBackend`: ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start
  method (safe with torch and CUDA on every OS). Each worker uses ``cpu_count // workers`` torch
  threads and ignores Ctrl-C: the main process handles it, and :meth:`ProcessBackend.stop`
  terminates the workers, leaving interrupted trials with their checkpoints for ``--resume``.
- :class:`RayBackend`: one Ray task per trial (``ray.init(address=...)``; the optional extra
  ``pip install umbra[ray]``). Progress travels to a small actor by fire-and-forget calls (a
  task blocked in ``ray.get`` lends its CPU to another task, which would oversubscribe the
  node). The trial folders must be on storage every node sees (a local Ray instance, or a
  shared filesystem).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import queue
import signal
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from benchmarks.runner import TrialOutcome
    from benchmarks.suites import Trial


@dataclass(frozen=True)
class Job:
    """One trial to run: the arguments of :func:`benchmarks.runner.run_trial`, plus its index."""

    index: int
    trial: Trial
    config: Any
    logdir: Path
    suite: str
    resume: bool


class Backend(Protocol):
    """Runs jobs somewhere; polled by :func:`benchmarks.runner.run_trials`."""

    def submit(self, jobs: list[Job]) -> None:
        """Start (or queue) every job."""

    def poll(self, timeout: float) -> tuple[list[tuple[int, TrialOutcome]], list[tuple[int, int]]]:
        """Wait up to ``timeout`` seconds; return ``(ended jobs, progress since last call)``."""

    def stop(self) -> None:
        """Cancel what has not started and end what is running (also after success)."""


def default_workers() -> int:
    """Half the machine's cores, at least 1: one trial per two cores leaves room for the
    environment stepping and the update of each."""
    return max(1, (os.cpu_count() or 1) // 2)


def threads_per_worker(workers: int) -> int:
    """Torch threads for each of ``workers`` processes: the cores shared out, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


# ---------------------------------------------------------------------------------- processes
_progress_queue: Any = None  # set in each worker process by _init_worker


def _init_worker(threads: int, progress_queue: Any) -> None:
    import torch

    global _progress_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    torch.set_num_threads(threads)
    _progress_queue = progress_queue


def _run_job(job: Job) -> TrialOutcome:
    """In a worker: run the trial, reporting its global step to the main process."""
    from benchmarks.runner import run_trial

    def progress(step: int) -> None:
        if _progress_queue is not None:
            _progress_queue.put((job.index, int(step)))

    return run_trial(job.trial, job.config, job.logdir, suite=job.suite, resume=job.resume,
                     progress=progress)


class ProcessBackend:
    """Trials in ``workers`` local processes (``spawn`` start method).

    Args:
        workers: Number of processes (trials at once).
        threads: Torch threads per process (default: :func:`threads_per_worker`).
    """

    def __init__(self, workers: int, threads: int | None = None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        context = multiprocessing.get_context("spawn")
        self._progress = context.Queue()
        self._executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_worker,
            initargs=(threads or threads_per_worker(workers), self._progress))
        self._futures: dict[concurrent.futures.Future, Job] = {}

    def submit(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._futures[self._executor.submit(_run_job, job)] = job

    def poll(self, timeout: float) -> tuple[list[tuple[int, TrialOutcome]], list[tuple[int, int]]]:
        done, _ = concurrent.futures.wait(list(self._futures), timeout=timeout,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        ended = []
        for future in done:
            job = self._futures.pop(future)
            ended.append((job.index, _outcome(job, future.result, "a worker process")))
        return ended, _drain(self._progress)

    def stop(self) -> None:
        # ProcessPoolExecutor has no public way to end running work (before Python 3.14's
        # terminate_workers): terminate its processes, which shutdown() forgets, so take them
        # first. Interrupted trials keep their checkpoints; idle workers just end.
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=10)
        self._progress.close()
        self._progress.join_thread()


# ---------------------------------------------------------------------------------- Ray
class RayBackend:
    """One Ray task per trial.

    Args:
        address: Cluster address for ``ray.init`` (``"auto"``, ``"ray://host:10001"``); ``None``
            connects to ``RAY_ADDRESS`` if set, else starts a local instance.
        cpus_per_trial: CPUs Ray reserves for each trial (its torch threads too).
        gpus_per_trial: GPUs Ray reserves for each trial (fractions share one GPU).

    Raises:
        ImportError: Ray is not installed, with the command that installs it.
    """

    def __init__(self, address: str | None = None, cpus_per_trial: float = 1.0,
                 gpus_per_trial: float = 0.0):
        try:
            import ray
        except ImportError as err:
            raise ImportError(
                "--backend ray needs Ray: pip install -c constraints.txt -e '.[ray]' "
                "(or pip install 'ray[default]')"
            ) from err
        self._ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self._progress = ray.remote(num_cpus=0)(ProgressLog).remote()
        self._task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
                                max_retries=0)(_run_ray_job)
        self._threads = max(1, int(cpus_per_trial))
        self._refs: dict[Any, Job] = {}

    def submit(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._refs[self._task.remote(job, self._progress, self._threads)] = job

    def poll(self, timeout: float) -> tuple[list[tuple[int, TrialOutcome]], list[tuple[int, int]]]:
        refs = list(self._refs)
        ready = self._ray.wait(refs, num_returns=len(refs), timeout=timeout)[0] if refs else []
        ended = []
        for ref in ready:
            job = self._refs.pop(ref)
            ended.append((job.index, _outcome(job, lambda ref=ref: self._ray.get(ref),
                                              "a Ray task")))
        return ended, self._ray.get(self._progress.drain.remote())

    def stop(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        self._ray.kill(self._progress)
        if self._started_here:
            self._ray.shutdown()


class ProgressLog:
    """A Ray actor (0 CPUs) collecting ``(job index, step)`` reports until the driver drains
    them."""

    def __init__(self) -> None:
        self.items: list[tuple[int, int]] = []

    def put(self, item: tuple[int, int]) -> None:
        self.items.append(item)

    def drain(self) -> list[tuple[int, int]]:
        items, self.items = self.items, []
        return items


def _run_ray_job(job: Job, progress_log: Any, threads: int) -> TrialOutcome:
    """A Ray task: run the trial on whichever node Ray chose, reporting progress."""
    import torch

    from benchmarks.runner import run_trial

    torch.set_num_threads(threads)
    return run_trial(job.trial, job.config, job.logdir, suite=job.suite, resume=job.resume,
                     progress=lambda step: progress_log.put.remote((job.index, int(step))))


# ---------------------------------------------------------------------------------- helpers
def _outcome(job: Job, get: Any, where: str) -> TrialOutcome:
    """The job's outcome from ``get()``; a crash of the worker itself becomes a failed trial."""
    from benchmarks.runner import TrialOutcome

    try:
        return get()
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - e.g. BrokenProcessPool when a worker was killed
        return TrialOutcome(job.trial, Path(job.logdir), "failed",
                            error=f"{where} running the trial died:\n{traceback.format_exc()}")


def _drain(progress_queue: Any) -> list[tuple[int, int]]:
    items = []
    while True:
        try:
            items.append(progress_queue.get_nowait())
        except (queue.Empty, OSError, ValueError):
            return items
