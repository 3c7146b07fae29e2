"""A throwaway PostgreSQL server for tests and benchmarks: Debian's ``postgresql``
binaries, ``initdb`` into a temporary directory, listening on 127.0.0.1 only.

``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres``
user the Debian package creates (or ``nobody``) and the server runs as that user via
``runuser``; as anyone else it runs as the caller. ``make pytest`` installs the package
when it is missing.

A watchdog (a shell loop started with the server) stops the server and removes its files
when the process that started it is gone, so a test run that is killed (SIGKILL, a CI
time limit) leaves no server behind: ``pg_ctl`` detaches the server from its caller.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "find_bindir"]

USER = "tracing"  # the cluster's superuser (trust authentication, loopback only)


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _owner() -> str | None:
    """The user to run the server as when we are root; None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root with neither a 'postgres' nor a 'nobody' user")


class PostgresServer:
    """``start()`` a cluster, ``url(dbname)`` for clients, ``stop()`` (or ``kill()``)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = 0
        self.owner = _owner()
        self.dir = Path(tempfile.mkdtemp(prefix="tracing-pg-"))
        self.data = self.dir / "data"
        self._watchdog: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

    def _command(self, *args: str) -> list[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner, "--", *command]
        return command

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = self._command(*args)
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.dir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr or done.stdout}\n{tail}")

    def init(self) -> None:
        if self.owner is not None:
            shutil.chown(self.dir, self.owner)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        """Start on a free loopback port (the same one again after ``stop()``)."""
        if not self.data.exists():
            self.init()
        self.port = self.port or _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        self._watch()

    def _watch(self) -> None:
        """Start the watchdog once: it polls for this process every second (nothing waits
        on it), then crashes the server (if still up) and removes the directory."""
        if self._watchdog is not None:
            return
        stop = " ".join(shlex.quote(a) for a in self._command(
            "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop"
        ))  # fmt: skip
        script = (
            f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
            f"if [ -e {shlex.quote(str(self.data / 'postmaster.pid'))} ]; then {stop}; fi; "
            f"rm -rf {shlex.quote(str(self.dir))}"
        )
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a signal to the test run's process group spares it
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends sessions and shuts down cleanly; ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        """Stop the server and remove its files. The removal (hundreds of MB after a test
        run, one database per test) runs in the background: on a loaded machine it can
        take longer than a test's time limit, and nothing waits for it."""
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            if self._watchdog is not None:  # its work is done here
                self._watchdog.kill()
                self._watchdog.wait()
                self._watchdog = None
            # The shell exits at once; rm carries on, re-parented, and nothing waits.
            command = f"rm -rf {shlex.quote(str(self.dir))} >/dev/null 2>&1 &"
            subprocess.run(["sh", "-c", command], check=False, timeout=30)
