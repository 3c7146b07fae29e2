"""Floor: pre-serialised batches posted with aiohttp (the transport's ceiling).

Every body (100 records of the same content, orjson-encoded) is built before the clock
starts; then four tasks POST them back to back with one aiohttp session. There is no
per-record enqueue path, so no enqueue cost is reported.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson

from ._common import PREPARED, Recorder, main, record_dict

BATCH, WORKERS = 100, 4


def prepare(n: int) -> list[bytes]:
    return [
        orjson.dumps({"traces": [record_dict(j) for j in range(i, min(n, i + BATCH))]})
        for i in range(0, n, BATCH)
    ]


async def body(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    url = f"{sink}/api/traces/batch"
    headers = {"Content-Type": "application/json"}
    bodies: list[bytes] = PREPARED[0]
    async with aiohttp.ClientSession() as session:

        async def post(chunk: list[bytes]) -> None:
            for payload in chunk:
                async with session.post(url, data=payload, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"sink answered {response.status}")

        start = time.perf_counter()
        await asyncio.gather(*(post(bodies[w::WORKERS]) for w in range(WORKERS)))
        end = time.perf_counter()
    return {"start": start, "end": end}


if __name__ == "__main__":
    main("floor: pre-serialised batches", body, asyncio_native=True, prepare=prepare)
