"""Write a spool backlog straight to disk, in the SDK's own format: an orphaned part (a
free lock) holding ``count`` traces, as a process killed during a long outage leaves it."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from tracing._spool_format import encode_record

SEGMENT = 16 * 2**20


def write_backlog(spool_dir: Path, count: int, size: int = 1000, prefix: str = "b") -> int:
    """Returns the bytes written."""
    part = spool_dir / "p-0000000000000001-000000backlog"
    part.mkdir(parents=True, mode=0o700)
    (part / "lock").touch(mode=0o600)
    body = "x" * size
    number, chunk, chunk_size, total = 1, [], 0, 0
    for seq in range(1, count + 1):
        trace_id = f"{prefix}-{seq}"
        payload = orjson.dumps(
            {
                "id": trace_id,
                "name": "backlog",
                "startTime": "2026-12-01T00:00:00.000000Z",
                "endTime": "2026-12-01T00:00:01.000000Z",
                "status": "ok",
                "input": body,
            }
        )
        record = encode_record(seq, payload)
        chunk.append(record)
        chunk_size += len(record)
        if chunk_size >= SEGMENT or seq == count:
            (part / f"{number:08d}.seg").write_bytes(b"".join(chunk))
            total += chunk_size
            number, chunk, chunk_size = number + 1, [], 0
    os.sync()
    return total
