"""One part of a spool directory: the files one tracer writes, held by an OS lock.

::

    spool_dir/                          0700
      p-<time hex>-<random hex>/        0700, one per tracer that opened the spool
        lock                            flock(LOCK_EX) held by its owner for its lifetime
        00000001.seg  00000001.ack      records, and which of them the server answered for
        00000002.seg  ...

A part is made under a temporary name with its lock already held, then renamed, so a
visible part always has an owner or a free lock. A tracer owns its part until it shuts
down; a tracer that finds a part whose lock it can take (its owner died, or shut down with
traces left) adopts it, replays it and deletes it. ``flock`` makes that exactly one
adopter per part, with no PID check (PIDs repeat; a lock dies with its process). flock
locks belong to the open file description, which a forked child shares: the child closes
its copies without unlocking, so the parent keeps its lock.

Every method here may raise ``OSError``; the writer (``_spool_writer``) catches them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
from collections.abc import Callable
from itertools import count, groupby, repeat
from operator import and_, itemgetter, rshift

import attrs

from ._spool_format import SegmentReader, encode_acks, read_acks

__all__ = [
    "IOV_MAX",
    "NUMBER_SHIFT",
    "SEQ_MASK",
    "Part",
    "Segment",
    "acks_by_segment",
    "adoptable",
    "create_part",
    "ref_base",
    "split_ref",
    "sync_dir",
]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FILE_MODE = 0o600
# A record's place, as a trace's ``_spool`` holds it (``_spool_queue.Ref``): one int,
# ``part slot << 96 | segment number << 64 | seq``. An int, not a tuple with the Part in
# it: the garbage collector never tracks it, and the writer makes a group's refs in C.
_SLOT_SHIFT, NUMBER_SHIFT, SEQ_MASK = 96, 64, (1 << 64) - 1
_PARTS: dict[int, Part] = {}  # slot -> open part of this process
_SLOTS = count(1)
_FIRST, _SECOND = itemgetter(0), itemgetter(1)
IOV_MAX = min(os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 16, 1024)


@attrs.define(eq=False)
class Segment:
    """What the owner or adopter knows of one segment file."""

    number: int
    size: int = 0
    outstanding: int = 0  # records on disk this process is responsible for, not yet acked
    sealed: bool = False  # nothing more is written to it, or read from it
    fd: int = -1  # write end (own current segment only)
    ack_fd: int = -1
    ack_size: int = 0


def _seg_name(number: int) -> str:
    return f"{number:08d}.seg"


def _ack_name(number: int) -> str:
    return f"{number:08d}.ack"


def _open_lock(path: str, *, create: bool) -> int | None:
    """A held, non-blocking exclusive flock on ``path``, or None if someone holds it."""
    flags = os.O_RDWR | _CLOEXEC | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, _FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    # The lock is only worth something if it is still the file at that path: a part
    # deleted by its adopter between our open() and flock() is not adopted again.
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return None
    return fd


class Part:
    """A part's directory, its lock and its segments (see the module docstring)."""

    def __init__(self, path: str, lock_fd: int, *, own: bool) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.lock_fd = lock_fd
        self.own = own
        self.mine = own  # made by this tracer (now or before a restart): see _spool_queue
        self.segments: dict[int, Segment] = {}
        self.bytes = 0
        self.next_number = 1
        self.current: Segment | None = None
        self.closed = False
        # Deletes files in this order, off the caller's thread (the owner's writer sets it).
        self.unlink: Callable[[list[str]], None] | None = None
        self.slot = next(_SLOTS)
        _PARTS[self.slot] = self

    def __repr__(self) -> str:
        return f"<Part {self.name} own={self.own} segments={len(self.segments)} bytes={self.bytes}>"

    def seg_path(self, number: int) -> str:
        return os.path.join(self.path, _seg_name(number))

    def ack_path(self, number: int) -> str:
        return os.path.join(self.path, _ack_name(number))

    # Writing (own part) ---------------------------------------------------------------

    def open_segment(self) -> Segment:
        """Start a new segment file for appends."""
        number = self.next_number
        self.next_number += 1
        fd = os.open(
            self.seg_path(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, _FILE_MODE
        )
        segment = Segment(number, fd=fd)
        self.segments[number] = segment
        self.current = segment
        return segment

    def seal_current(self) -> None:
        """No more appends to the current segment (rotation, or after a write error)."""
        segment, self.current = self.current, None
        if segment is not None:
            segment.sealed = True
            if segment.fd >= 0:
                os.close(segment.fd)
                segment.fd = -1
            if segment.outstanding <= 0:
                self.delete_segment(segment)

    def append(self, segment: Segment, pieces: list[bytes]) -> None:
        """Write ``pieces`` at the segment's end with ``writev`` (no joined copy); on
        failure cut the file back to where it was. More pieces than one call takes are
        joined first: one system call, so one wait for the GIL after it (up to the
        interpreter's switch interval while the event loop is busy), not one per call."""
        written = 0
        if len(pieces) > IOV_MAX:
            pieces = [b"".join(pieces)]
        try:
            for first in range(0, len(pieces), IOV_MAX):
                chunk = pieces[first : first + IOV_MAX]
                size = sum(map(len, chunk))
                done = os.writev(segment.fd, chunk)
                if done < size:  # a short write (a full disk, a signal): the rest by hand
                    rest = memoryview(b"".join(chunk))[done:]
                    while rest:
                        step = os.write(segment.fd, rest)
                        if not step:
                            raise OSError(errno.ENOSPC, "no progress writing", self.path)
                        rest = rest[step:]
                written += size
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, segment.size)
            raise
        segment.size += written
        self.bytes += written

    # Acknowledgements -----------------------------------------------------------------

    def write_acks(self, number: int, seqs: list[int]) -> None:
        segment = self.segments.get(number)
        if segment is None:
            return
        segment.outstanding -= len(seqs)
        if segment.sealed and segment.outstanding <= 0:
            self.delete_segment(segment)  # no ack needed for a file that is gone
            return
        if segment.ack_fd < 0:
            path = os.path.join(self.path, _ack_name(number))
            segment.ack_fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _CLOEXEC, _FILE_MODE
            )
        data = encode_acks(seqs)
        os.write(segment.ack_fd, data)
        segment.ack_size += len(data)
        self.bytes += len(data)

    def load_acks(self, number: int) -> tuple[set[int], int]:
        """What an earlier owner acknowledged in segment ``number`` (missing file: none)."""
        path = os.path.join(self.path, _ack_name(number))
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return set(), 0
        segment = self.segments[number]
        segment.ack_size = len(data)
        return read_acks(data)

    def delete_segment(self, segment: Segment) -> None:
        """Remove a segment whose every record was answered for: data first, then acks."""
        for fd in (segment.fd, segment.ack_fd):
            if fd >= 0:
                os.close(fd)
        segment.fd = segment.ack_fd = -1
        # An ack file without its segment is harmless (ignored, then removed); the other
        # way round would replay answered records. So the segment goes first.
        paths = [self.seg_path(segment.number), self.ack_path(segment.number)]
        if self.unlink is not None:
            self.unlink(paths)  # the writer's helper thread (_spool_sync)
        else:
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        self.bytes -= segment.size + segment.ack_size
        del self.segments[segment.number]

    def fds(self) -> list[int]:
        return [fd for s in self.segments.values() for fd in (s.fd, s.ack_fd) if fd >= 0]

    # Reading (adopted parts) ----------------------------------------------------------

    def scan(self) -> None:
        """List the segments an earlier owner left (sorted, oldest first)."""
        for entry in os.scandir(self.path):
            stem, _, ext = entry.name.partition(".")
            if ext == "seg" and stem.isdigit() and int(stem) < 2**32:  # fits in a ref
                size = entry.stat().st_size
                self.segments[int(stem)] = Segment(int(stem), size=size, sealed=False)
                self.bytes += size
            elif ext == "ack" and stem.isdigit():
                self.bytes += entry.stat().st_size
        self.next_number = max(self.segments, default=0) + 1
        for entry in os.scandir(self.path):  # acks of segments already deleted
            stem, _, ext = entry.name.partition(".")
            if ext == "ack" and stem.isdigit() and int(stem) not in self.segments:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    def reader(self, number: int, start: int = 0, end: int | None = None) -> SegmentReader:
        return SegmentReader(self.seg_path(number), start, end)

    # Lifetime -------------------------------------------------------------------------

    def empty(self) -> bool:
        return all(s.outstanding <= 0 and s.sealed for s in self.segments.values())

    def release(self, *, remove: bool) -> None:
        """Close everything (the lock last); with ``remove``, delete the part first."""
        if self.closed:
            return
        self.closed = True
        _PARTS.pop(self.slot, None)
        self.current = None
        for fd in self.fds():
            with contextlib.suppress(OSError):
                os.close(fd)
        if remove:
            with contextlib.suppress(OSError):
                for entry in os.scandir(self.path):
                    if entry.name != "lock":
                        os.unlink(entry.path)
                os.unlink(os.path.join(self.path, "lock"))
                os.rmdir(self.path)
        os.close(self.lock_fd)

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited descriptors, never unlocking them."""
        self.closed = True
        _PARTS.pop(self.slot, None)
        for fd in [*self.fds(), self.lock_fd]:
            with contextlib.suppress(OSError):
                os.close(fd)


def ref_base(part: Part, number: int) -> int:
    """The ref of record 0 of segment ``number``: a record's ref is this | its seq."""
    return (part.slot << _SLOT_SHIFT) | (number << NUMBER_SHIFT)


def split_ref(ref: int) -> tuple[Part | None, int, int]:
    """The part (None once released), segment number and seq of a ref."""
    number = (ref >> NUMBER_SHIFT) & 0xFFFFFFFF
    return _PARTS.get(ref >> _SLOT_SHIFT), number, ref & SEQ_MASK


def acks_by_segment(refs: list[int]) -> list[tuple[Part, int, list[int]]]:
    """Refs grouped by part and segment: (part, number, seqs); parts released since are
    left out. A batch is mostly one run of one segment, so this is a few C loops."""
    by_segment: dict[int, list[int]] = {}
    keys = map(rshift, refs, repeat(NUMBER_SHIFT))  # part slot and segment number
    for key, run in groupby(zip(keys, refs, strict=True), _FIRST):
        by_segment.setdefault(key, []).extend(map(and_, map(_SECOND, run), repeat(SEQ_MASK)))
    found = []
    for key, seqs in by_segment.items():
        part = _PARTS.get(key >> (_SLOT_SHIFT - NUMBER_SHIFT))
        if part is not None:
            found.append((part, key & 0xFFFFFFFF, seqs))
    return found


def create_part(spool_dir: str, *, sync: bool = False) -> Part:
    """Make this tracer's own part, locked before anyone can see it. With ``sync``, the
    directory entries are synced too (the part's in ``spool_dir``, and ``spool_dir``'s
    own when it was just made), so a power loss cannot take the whole part away."""
    made = not os.path.isdir(spool_dir)
    os.makedirs(spool_dir, mode=0o700, exist_ok=True)
    name = f"{time.time_ns():016x}-{secrets.token_hex(6)}"
    staging = os.path.join(spool_dir, f"t-{name}")
    os.mkdir(staging, 0o700)
    try:
        fd = _open_lock(os.path.join(staging, "lock"), create=True)
        if fd is None:  # only a stale-directory sweep racing us could cause this
            raise OSError(f"could not lock the new spool part {staging}")
    except BaseException:
        with contextlib.suppress(OSError):
            os.rmdir(staging)
        raise
    final = os.path.join(spool_dir, f"p-{name}")
    try:
        os.rename(staging, final)
        if sync:
            sync_dir(spool_dir)
            if made:
                sync_dir(os.path.dirname(os.path.abspath(spool_dir)))
    except BaseException:
        os.close(fd)
        raise
    return Part(final, fd, own=True)


def sync_dir(path: str) -> None:
    """fsync a directory: the names in it (a new or renamed file) survive a power loss."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def adoptable(spool_dir: str, skip: set[str]) -> list[Part]:
    """Parts under ``spool_dir`` whose lock is free, now locked by us (oldest first)."""
    adopted: list[Part] = []
    try:
        names = sorted(n for n in os.listdir(spool_dir) if n.startswith("p-"))
    except FileNotFoundError:
        return adopted
    for name in names:
        if name in skip:
            continue
        path = os.path.join(spool_dir, name)
        try:
            fd = _open_lock(os.path.join(path, "lock"), create=False)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if fd is None:
            continue
        part = Part(path, fd, own=False)
        try:
            part.scan()
        except OSError:
            part.release(remove=False)
            continue
        adopted.append(part)
    _remove_stale_staging(spool_dir)
    return adopted


def _remove_stale_staging(spool_dir: str) -> None:
    """A ``t-`` directory is a part whose creator died before the rename: empty, unused."""
    with contextlib.suppress(OSError):
        for name in os.listdir(spool_dir):
            if not name.startswith("t-"):
                continue
            path = os.path.join(spool_dir, name)
            fd = None
            with contextlib.suppress(OSError):
                if time.time() - os.stat(path).st_mtime < 60:
                    continue  # possibly being made right now
                fd = _open_lock(os.path.join(path, "lock"), create=False)
            if fd is None:
                continue
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(path, "lock"))
                os.rmdir(path)
            os.close(fd)
