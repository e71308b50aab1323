"""Shared by the benchmarks: a separately started `python -m gateway serve` and an account."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class RunningGateway:
    base_url: str
    db: Path
    api_key: str
    encryption_key: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the gateway process has used so far (user + system), from /proc."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


GATEWAY = [sys.executable, "-m", "gateway"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_gateway(*serve_args: str, balance: str = "1000000") -> Iterator[RunningGateway]:
    """Start `python -m gateway serve` in its own process, with one funded account."""
    with tempfile.TemporaryDirectory(prefix="keda-bench-") as tmp:
        db = Path(tmp) / "gateway.db"
        port = free_port()
        created = subprocess.run(
            [*GATEWAY, "account", "create", "--db", str(db), "--email", "bench@example.com"]
            + ["--balance", balance],
            check=True,
            capture_output=True,
            text=True,
        )
        account = json.loads(created.stdout)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [*GATEWAY, "serve", "--port", str(port), "--db", str(db), "--rate-limit", "0"]
            + list(serve_args),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the gateway did not start")
                time.sleep(0.1)
            yield RunningGateway(
                base_url=f"http://127.0.0.1:{port}/api",
                db=db,
                api_key=account["apiKey"],
                encryption_key=account["encryptionKey"],
                pid=proc.pid,
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
