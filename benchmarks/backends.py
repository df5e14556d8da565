"""Where trials run: local worker processes, or Ray tasks on a cluster (``--backend ray``).

:func:`benchmarks.runner.run_trials` hands the trials still to do to a backend as :class:`Job`
objects and polls it: :meth:`Backend.poll` returns the trials that ended (their
:class:`~benchmarks.runner.TrialOutcome`) and the progress reported since the last call
(``(job index, global step)`` pairs). Every job runs :func:`benchmarks.runner.run_trial`, which
writes the trial's ``result.json`` (or ``error.json``) itself, so a finished trial is on disk
whatever happens to the others or to the caller.

- :class:`ProcessBackend`: ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start
  method (safe with torch and CUDA on every OS). Workers ignore Ctrl-C: the main process handles
  it, and :meth:`ProcessBackend.stop` terminates the workers, leaving interrupted trials with
  their checkpoints for ``--resume``. Workers also die with the main process, even when it is
  killed with ``kill -9`` (:func:`die_with_parent`), so none trains on unseen.

Every trial uses :data:`benchmarks.runner.TRIAL_THREADS` torch threads wherever it runs: the
thread count changes the returns, so it must not depend on the number of workers.
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
import socket
import sys
import tempfile
import threading
import time
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


# ---------------------------------------------------------------------------------- processes
_progress_queue: Any = None  # set in each worker process by _init_worker
#: ``prctl`` option: the signal the kernel sends this process when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, poll_s: float = 0.5) -> None:
    """End this process as soon as ``parent`` (the pid of the process that started it) ends.

    On Linux the kernel sends ``SIGKILL`` when the parent dies (``prctl(PR_SET_PDEATHSIG)``);
    everywhere, a daemon thread also checks ``os.getppid()`` every ``poll_s`` seconds and calls
    ``os._exit(1)`` once this process was handed to another parent. Without this, a worker of a
    main process killed with ``kill -9`` trained on and wrote its ``result.json`` a minute later.

    Args:
        parent: The pid this process's parent had when it started it.
        poll_s: Seconds between two checks of the watchdog thread.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the watchdog alone
            pass
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _init_worker(parent: int, progress_queue: Any) -> None:
    global _progress_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    die_with_parent(parent)
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
    """

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        context = multiprocessing.get_context("spawn")
        self._progress = context.Queue()
        self._executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_worker,
            initargs=(os.getpid(), self._progress))
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
        cpus_per_trial: CPUs Ray reserves for each trial (which trains with
            :data:`benchmarks.runner.TRIAL_THREADS` torch threads whatever it is).
        gpus_per_trial: GPUs Ray reserves for each trial (fractions share one GPU).

    Raises:
        ImportError: Ray is not installed, with the command that installs it.
        ConnectionError: no Ray cluster answers at ``address`` (:func:`check_ray_address`), or
            ``ray.init`` failed to connect to it (in about 40 s); one line.
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
            address = check_ray_address(address)
            _init_ray(ray, address)
        self._progress = ray.remote(num_cpus=0)(ProgressLog).remote()
        self._task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
                                max_retries=0)(_run_ray_job)
        self._refs: dict[Any, Job] = {}

    def submit(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._refs[self._task.remote(job, self._progress)] = job

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


#: Seconds :func:`check_ray_address` waits for a TCP connection to the cluster.
RAY_CONNECT_TIMEOUT_S = 5.0


def check_ray_address(address: str | None, timeout: float = RAY_CONNECT_TIMEOUT_S) -> str | None:
    """The address ``ray.init`` should connect to, checked to answer within ``timeout`` seconds.

    ``ray.init`` itself answers a missing cluster with a long traceback (``"auto"``) or retries
    for more than ten minutes (an address where nothing listens); this fails in seconds instead.

    Args:
        address: ``None`` (``RAY_ADDRESS`` if set, else a new local instance), ``"auto"``
            (``RAY_ADDRESS``, else the cluster ``ray start`` left on this machine),
            ``"host:port"`` or ``"ray://host:port"`` (Ray Client).
        timeout: Seconds to wait for the TCP connection.

    Returns:
        The address to pass to ``ray.init``; ``None`` to start a local instance.

    Raises:
        ConnectionError: no cluster found or none answers, in one line that says what to do.
    """
    from_env = os.environ.get("RAY_ADDRESS") or None
    if address is None and from_env is None:
        return None
    if address in (None, "auto"):
        where = "RAY_ADDRESS" if from_env else "--address auto"
        target = from_env if from_env not in (None, "auto") else _local_ray_cluster()
        if target is None:
            raise ConnectionError(
                f"{where}: no Ray cluster is running on this machine; start one with "
                "`ray start --head`, pass --address HOST:PORT, or leave out --address (and "
                "RAY_ADDRESS) to start a local Ray instance for this run")
    else:
        where, target = f"--address {address}", address
    host, _, port = target.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not host or not port.isdigit():
        raise ConnectionError(f"{where}: expected auto, HOST:PORT or ray://HOST:PORT, got "
                              f"{target!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise ConnectionError(
            f"{where}: no Ray cluster answers at {host}:{port} ({reason} within {timeout:g} s); "
            "check the address and that the cluster is up (`ray status`), or leave out "
            "--address to start a local Ray instance") from None
    return target


def _local_ray_cluster() -> str | None:
    """The cluster ``ray start`` recorded on this machine (``/tmp/ray/ray_current_cluster``, or a
    running GCS process), as Ray itself finds it for ``"auto"``; ``None`` when there is none."""
    try:
        from ray._private.services import get_ray_address_from_environment
    except ImportError:  # a Ray without that helper: read the file it would read
        temp = os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()
        path = Path(temp) / "ray" / "ray_current_cluster"
        return (path.read_text(encoding="utf-8").strip() or None) if path.is_file() else None
    try:
        return get_ray_address_from_environment("auto", None)
    except ConnectionError:
        return None


def _init_ray(ray: Any, address: str | None) -> None:
    """``ray.init(address)``, trying a cluster's GCS once rather than 20 times.

    Each attempt of ``ray.init`` to reach the GCS of an existing cluster takes about 40 s when
    something answers at the address that is not a Ray GCS, and Ray makes 20 of them; its
    setting ``RAY_gcs_server_port_wait_time_s`` (honoured when the user set it) bounds their
    number.

    Raises:
        ConnectionError: Ray could not connect, in one line.
    """
    bound = address is not None and "RAY_gcs_server_port_wait_time_s" not in os.environ
    if bound:
        os.environ["RAY_gcs_server_port_wait_time_s"] = "1"
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, TimeoutError, RuntimeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConnectionError(f"ray.init(address={address!r}) failed: {first}") from None
    finally:
        if bound:
            os.environ.pop("RAY_gcs_server_port_wait_time_s", None)


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


def _run_ray_job(job: Job, progress_log: Any) -> TrialOutcome:
    """A Ray task: run the trial on whichever node Ray chose, reporting progress."""
    from benchmarks.runner import run_trial

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
