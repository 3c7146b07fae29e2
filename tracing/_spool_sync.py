"""The spool's background fsync for ``spool_fsync="interval"``: one long-lived helper thread.

The writer hands it the paths written in the last second; it syncs them while the writer
goes on with the next groups (a slow disk's sync must not hold up the sender). One thread
for the spool's lifetime, not one per second: starting a thread makes the writer wait for
the GIL twice (the start, then the new thread's first step), up to the interpreter's
switch interval (5 ms) each while the event loop is busy, which delayed a group.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading

__all__ = ["Syncer", "sync_paths"]


class Syncer:
    """Syncs sets of paths in the background, one set at a time."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[set[str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.busy = False  # a set handed over is not synced yet

    def __repr__(self) -> str:
        return f"<Syncer busy={self.busy}>"

    def submit(self, paths: set[str]) -> None:
        """Sync ``paths`` in the background (the caller checks ``busy`` first)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="tracing-spool-sync", daemon=True
            )
            self._thread.start()
        self.busy = True
        self._jobs.put(paths)

    def stop(self) -> None:
        """Wait for the set being synced, then end the thread."""
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._jobs.put(None)
            thread.join()
        self.busy = False

    def _run(self) -> None:
        while True:
            paths = self._jobs.get()
            if paths is None:
                return
            sync_paths(paths)
            self.busy = False


def sync_paths(paths: set[str]) -> None:
    """fsync files (and directories) by path; one already deleted needs nothing."""
    for path in paths:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
