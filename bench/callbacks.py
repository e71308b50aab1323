"""Benchmark: callback events from the gateway's outbox into the console's ledger, end to end.

A separately started `python -m gateway serve` (deterministic carrier with no delays, private
callbacks allowed) and, in this process, the console's real receiver (`webhook_routes` over a
SQLite `Ledger`, under uvicorn in a thread, checking every signature). 5,000 messages are
sent with AsyncKedaClient (5 tasks of 1,000) with the receiver as `callbackUrl` and recorded
in the ledger; each makes two events (SENT, DELIVERED): 10,000 events. The clock runs from
the first send until the ledger holds the last event.

Run: python -m bench.callbacks [--messages 5000] [--concurrency 128]
Target on the 2-core machine: ≥ 1,000 events/s into the ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from bench._gateway import GATEWAY, free_port, running_gateway
from kedacore import AsyncKedaClient
from kedacore.ledger import Ledger
from kedacore.webhooks import webhook_routes

CONTENT = "Your order has shipped"
PER_TASK = 1000


def start_receiver(
    ledger: Ledger, signing_key: str
) -> tuple[str, uvicorn.Server, threading.Thread]:
    """The console's receiver on a loopback port, in a thread; returns its callback URL."""
    token = secrets.token_urlsafe(24)
    app = Starlette(routes=webhook_routes(ledger, token=token, signing_key=signing_key))
    port = free_port()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}/hooks/keda/{token}", server, thread


def event_count(ledger: Ledger) -> int:
    """Events in the ledger so far (ids are never reused: max(id) is a cheap count)."""
    with ledger.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM events").scalar_one()


async def send_all(gw, ledger: Ledger, callback_url: str, messages: int) -> float:
    """Send and record every task; returns when the first send started (perf_counter)."""
    async with AsyncKedaClient(
        gw.api_key, gw.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
    ) as client:
        started = time.perf_counter()

        async def one(task: int) -> None:
            count = min(PER_TASK, messages - task * PER_TASK)
            numbers = [f"+1206{3_000_000 + task * PER_TASK + i:07d}" for i in range(count)]
            result = await client.sms.send("US", numbers, CONTENT, callback_url=callback_url)
            await asyncio.to_thread(
                ledger.record_send, result, country="US", sender=None, content=CONTENT
            )

        await asyncio.gather(*(one(t) for t in range(-(-messages // PER_TASK))))
        return started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="two events each (5000)")
    parser.add_argument("--concurrency", type=int, default=128, help="gateway deliveries (128)")
    args = parser.parse_args()
    expected = 2 * args.messages

    serve_args = [
        "--allow-private-callbacks",
        "--sent-delay",
        "0",
        "--deliver-delay",
        "0",
        "--callback-concurrency",
        str(args.concurrency),
    ]
    with (
        tempfile.TemporaryDirectory(prefix="keda-bench-ledger-") as tmp,
        running_gateway(*serve_args) as gw,
    ):
        ledger = Ledger(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        url, server, thread = start_receiver(ledger, gw.encryption_key)
        try:
            started = asyncio.run(send_all(gw, ledger, url, args.messages))
            sent = time.perf_counter()
            deadline = sent + 120
            while (count := event_count(ledger)) < expected and time.perf_counter() < deadline:
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            with ledger.engine.connect() as conn:
                final = conn.exec_driver_sql(
                    "SELECT count(*) FROM messages WHERE status = 'DELIVERED'"
                ).scalar_one()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            ledger.close()
        listing = subprocess.run(
            [*GATEWAY, "outbox", "--db", str(gw.db), "--limit", "1", "--json"],
            check=True,
            capture_output=True,
            text=True,
        )
        counts = json.loads(listing.stdout)["counts"]

    print(f"callbacks, {args.messages} messages x 2 events = {expected} events, end to end")
    print(f"  sends accepted and recorded in {sent - started:.2f} s")
    print(
        f"  {count} events in the ledger in {elapsed:.2f} s from the first send: "
        f"{count / elapsed:,.0f} events/s   target ≥ 1,000/s"
    )
    print(f"  ledger: {final} of {args.messages} messages DELIVERED; gateway outbox: {counts}")
    if count != expected or final != args.messages:
        raise SystemExit("not every event arrived")


if __name__ == "__main__":
    main()
