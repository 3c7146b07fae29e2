"""The spool writer's slow system calls, on one long-lived helper thread.

- fsync for ``spool_fsync="interval"``: the writer notes each file it writes in
  ``dirty``; about once a second those are synced here while the writer goes on with the
  next groups (a slow disk's sync must not hold up the sender). At shutdown,
  ``sync_now`` syncs the rest on the writer's own thread.
- Deleting a segment whose every record was answered for: unlinking a 16 MB file frees
  its page cache, measured at 10-60 ms under load, time the writer's next group waited.
  The helper unlinks the segment, then its acknowledgements (that order: see
  ``_spool_part``); a kill before it did only leaves records an adopter finds answered.

One thread for the spool's lifetime, not one per sync: starting a thread makes the writer
wait for the GIL twice (the start, then the new thread's first step), up to the
interpreter's switch interval (5 ms) each while the event loop is busy.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Iterable

__all__ = ["Syncer", "sync_paths"]

_UNLINK, _SYNC = 0, 1


class Syncer:
    """Syncs sets of paths and deletes files in the background, in the order given."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[int, list[str]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.busy = False  # a set handed over is not synced yet
        self.dirty: set[str] = set()  # files written since the last sync
        self.last = time.monotonic()  # when the last sync was handed over or done

    def due(self, now: float, interval: float) -> bool:
        """Whether files were written and ``interval`` seconds passed since the last sync."""
        return bool(self.dirty) and now - self.last >= interval

    def sync_soon(self, extra: str | None) -> None:
        """fsync what was written since the last sync (and ``extra``, a directory) on the
        helper thread: a slow disk's sync must not hold up the writer's next groups."""
        if self.busy:
            return  # the last one is still at it; these files wait for the next
        paths, self.dirty = self.dirty, set()
        if extra is not None:
            paths.add(extra)
        self.submit(paths)
        self.last = time.monotonic()

    def sync_now(self, extra: str | None) -> None:
        """fsync everything written since the last sync, now, after what was handed over
        (shutdown)."""
        self.stop()
        paths, self.dirty = self.dirty, set()
        if extra is not None:
            paths.add(extra)
        sync_paths(paths)
        self.last = time.monotonic()

    def __repr__(self) -> str:
        return f"<Syncer busy={self.busy}>"

    def submit(self, paths: set[str]) -> None:
        """Sync ``paths`` in the background (the caller checks ``busy`` first)."""
        self.busy = True
        self._put((_SYNC, list(paths)))

    def unlink(self, paths: list[str]) -> None:
        """Delete files in the background, in this order (one already gone is skipped)."""
        self._put((_UNLINK, paths))

    def _put(self, job: tuple[int, list[str]]) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="tracing-spool-sync", daemon=True
            )
            self._thread.start()
        self._jobs.put(job)

    def stop(self) -> None:
        """Wait for what was handed over, then end the thread."""
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._jobs.put(None)
            thread.join()
        self.busy = False

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            kind, paths = job
            if kind == _SYNC:
                sync_paths(paths)
                self.busy = False
                continue
            for path in paths:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def sync_paths(paths: Iterable[str]) -> None:
    """fsync files (and directories) by path; one already deleted needs nothing."""
    for path in paths:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
