"""Local worker processes that never outlive the process that started them.

``concurrent.futures.ProcessPoolExecutor`` workers wait on a queue for their next task; when
the main process is killed with SIGKILL (no cleanup runs) nothing tells them, and they stay
alive (about 330 MB each) for ever. Every pool fleetsim starts passes :func:`die_with_parent`
as its initializer: a daemon thread in each worker checks every :data:`POLL_S` seconds that its
parent is still the process that started it, and ends the worker at once when it is not.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

#: how often a worker checks its parent, s
POLL_S = 0.5


def _watch(parent_pid: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != parent_pid:
            os._exit(1)  # the parent is gone: no cleanup to run, no one to report to


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this worker when ``parent_pid`` is no longer its parent."""
    threading.Thread(target=_watch, args=(parent_pid,), name="fleetsim-parent-watch",
                     daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers exit when this process dies (even by SIGKILL)."""
    return ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent,
                               initargs=(os.getpid(),))
