"""Which 'running' runs are really running: a lock file held by the process that trains.

The training process holds an exclusive `flock` on `runs/<id>/.lock` from before the run's row
exists until its status is final. The kernel drops the lock when that process ends, however it
ends (SIGKILL, a crash, a power cut), so a 'running' run whose lock anyone can take is one whose
process is gone: the store shows it as `interrupted`. No clock, pid or timeout is involved, so a
slow step is never mistaken for a dead run and a reused pid never keeps one alive.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:   # Windows: no flock; runs are never marked interrupted there (see is_held)
    fcntl = None

LOCK_NAME = ".lock"


class RunLock:
    """An exclusive lock on `path`, taken now (ValueError if another process holds it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._fd)
                self._fd = None
                raise ValueError(f"{self.path.parent.name} is being trained by another "
                                 "process; stop that one first") from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing drops the flock
            self._fd = None


def is_held(path: Path) -> bool:
    """Whether some live process holds the lock at `path`. A missing lock file means no
    process does (the run's folder is gone, or the run predates the lock)."""
    if fcntl is None:
        return True   # cannot tell: never call a run interrupted
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True   # unreadable: assume alive rather than mark it wrongly
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)   # also drops the shared lock if we took it
    return False
