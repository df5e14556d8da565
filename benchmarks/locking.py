"""One writer per trial folder: ``trial.lock``, naming the process that trains there.

A trial folder is written by one process at a time. Two could meet there when a ``--resume``
starts while a worker of an earlier run still trains the trial (its main process killed, say),
or when two runs share a ``--logdir``; both would write checkpoints, TensorBoard events and
``result.json`` into the same folder. :class:`TrialLock` prevents it:

- Taking the lock creates ``<trial>/trial.lock`` (if missing) and locks it with ``flock``
  (``fcntl``, POSIX), then writes the holder into it: ``{"pid", "host", "since"}``. The kernel
  drops a ``flock`` when its process dies, however it died (``kill -9`` included), so a lock
  file left by a dead process is simply taken over.
- A lock held by a live process raises :class:`TrialBusy`, whose message names that process.
- A lock file written on another host whose ``flock`` is free is not taken over (a shared
  filesystem may not carry locks between machines): delete it by hand once that run is gone.
- Releasing it deletes the file. Where ``fcntl`` is missing (Windows) the file is created
  with ``O_CREAT | O_EXCL`` instead, and one left by a process of this host that no longer
  runs is taken over.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "trial.lock"


class TrialBusy(RuntimeError):
    """The trial's folder is locked by another live process; the message says which."""


class TrialLock:
    """Exclusive right to write one trial folder, for the life of a ``with`` block.

    Args:
        logdir: The trial's folder (must exist).

    Example::

        with TrialLock(logdir):  # raises TrialBusy if another process trains there
            train(...)
    """

    def __init__(self, logdir: str | Path):
        self.path = Path(logdir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> TrialLock:
        """Take the lock, or take over one left by a dead process.

        Raises:
            TrialBusy: a live process holds it (or one of another host; see the module).
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this TrialLock")
        self._fd = self._flock() if fcntl is not None else self._create_exclusive()
        holder = {"pid": os.getpid(), "host": platform.node(),
                  "since": datetime.datetime.now(datetime.timezone.utc).isoformat(
                      timespec="seconds")}
        os.ftruncate(self._fd, 0)
        os.write(self._fd, (json.dumps(holder) + "\n").encode())
        return self

    def release(self) -> None:
        """Delete the lock file and let go of it (a no-op when not held)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: see _flock
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> TrialLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ---------------------------------------------------------------------------- internals
    def _flock(self) -> int:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise TrialBusy(_busy_message(self.path, holder, alive=True)) from None
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is None or not os.path.samestat(os.fstat(fd), current):
                os.close(fd)  # its holder released it (deleted the file) meanwhile: again
                continue
            holder = _read_holder(fd)
            if holder and holder.get("host") not in (None, platform.node()):
                os.close(fd)
                raise TrialBusy(_busy_message(self.path, holder, alive=None))
            return fd  # free, or left by a process that died: ours now

    def _create_exclusive(self) -> int:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _read_holder(self.path)
            same_host = holder.get("host") in (None, platform.node())
            if not same_host or _pid_alive(holder.get("pid")):
                raise TrialBusy(_busy_message(self.path, holder, alive=same_host or None))
            self.path.unlink(missing_ok=True)  # left by a dead process of this host
        raise TrialBusy(_busy_message(self.path, _read_holder(self.path), alive=True))


def _read_holder(source: int | Path) -> dict[str, Any]:
    """The holder recorded in a lock file (an open descriptor or a path); ``{}`` if unreadable."""
    try:
        if isinstance(source, int):
            text = os.pread(source, 4096, 0).decode()
        else:
            text = source.read_text(encoding="utf-8")
        holder = json.loads(text)
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _pid_alive(pid: Any) -> bool:  # pragma: no cover - the fallback without fcntl
    if not isinstance(pid, int):
        return True  # unknown holder: assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _busy_message(path: Path, holder: dict[str, Any], alive: bool | None) -> str:
    pid, host = holder.get("pid", "?"), holder.get("host", "?")
    since = f" since {holder['since']}" if holder.get("since") else ""
    who = f"PID {pid} on {host}{since}"
    if alive:
        return (f"{path.parent} is busy: another process trains this trial there ({who}; "
                f"{path.name} holds its lock), perhaps a worker of an earlier, killed run; "
                f"nothing was written. Wait for it to end or stop it (kill {pid}), then run "
                "again")
    return (f"{path.parent} is locked by {who}, another machine, which this one cannot check; "
            f"nothing was written. If no run of this trial is going there, delete {path} and "
            "run again")
