"""A collector process for hypothesis tests, driven with http.client (hypothesis runs
plain functions, so no event loop here)."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import threading
from pathlib import Path

from tests.collector.conftest import collector_env

__all__ = ["SyncCollector"]

_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+) ")


class SyncCollector:
    """One collector process for the module, spoken to with http.client (hypothesis
    drives plain functions)."""

    def __init__(self, tmp: Path, *args: str) -> None:
        command = [sys.executable, "-m", "tracing.collector", "--port", "0", "--db"]
        self.proc = subprocess.Popen(
            [*command, str(tmp / "c.db"), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=collector_env(),
        )
        self.log: list[str] = []
        self._port: int | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(30) or self._port is None:
            self.proc.kill()
            raise AssertionError("collector did not start:\n" + "\n".join(self.log))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.log.append(line)
            if self._port is None and (found := _LISTENING.search(line)):
                self._port = int(found.group(1))
                self._ready.set()
        self._ready.set()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        assert self._port is not None
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(15)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
