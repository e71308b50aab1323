"""Benchmark: 2,000 single-recipient sends through AsyncKedaClient vs the seed's approach.

Both run in the same process run against one separately started `python -m gateway serve`
(rate limit off): kedacore with concurrency 16 over pooled connections, and the seed's
approach — one `requests.post` per message, sequentially, the body built exactly as in the
seed's Python example (pycryptodome).

Run: python -m bench.gateway_send [--messages 2000] [--concurrency 16]
Targets on the 2-core machine: kedacore ≥ 500 sends/s and ≥ 3× the seed's approach.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
from decimal import Decimal

import requests
from Crypto.Cipher import AES

from bench._gateway import running_gateway
from kedacore import AsyncKedaClient, KedaClient

CONTENT = "Your verification code is 123456"


def numbers(start: int, count: int) -> list[str]:
    return [f"+1206{2_000_000 + start + i:07d}" for i in range(count)]


async def kedacore_run(gw, count: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    async with AsyncKedaClient(
        gw.api_key, gw.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
    ) as client:

        async def one(number: str) -> None:
            async with gate:
                await client.sms.send("US", [number], CONTENT)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(n) for n in numbers(0, count)))
        return time.perf_counter() - t0


def seed_run(gw, count: int) -> float:
    """The seed's Python example, one message per request, as written in the guide."""
    encryption_key = base64.b64decode(gw.encryption_key)
    t0 = time.perf_counter()
    for number in numbers(count, count):
        payload = {
            "countryCode": "US",
            "phoneNumbers": [number],
            "content": CONTENT,
            "senderId": "KedaSMS",
        }
        iv = os.urandom(12)
        timestamp = int(time.time())
        cipher = AES.new(encryption_key, AES.MODE_GCM, nonce=iv)
        cipher.update(timestamp.to_bytes(8, "big"))
        ciphertext, tag = cipher.encrypt_and_digest(json.dumps(payload).encode("utf-8"))
        body = {
            "apiKey": gw.api_key,
            "timestamp": timestamp,
            "iv": base64.b64encode(iv).decode(),
            "cipherText": base64.b64encode(ciphertext + tag).decode(),
        }
        response = requests.post(f"{gw.base_url}/sms/send", json=body, timeout=10)
        response.raise_for_status()
        assert response.json()["code"] == "0"
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with (
        running_gateway() as gw,
        KedaClient(
            gw.api_key, gw.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
        ) as sync,
    ):
        price = sync.pricing().price_for("US")
        before = sync.account.balance()
        ours = asyncio.run(kedacore_run(gw, args.messages, args.concurrency))
        seed = seed_run(gw, args.messages)
        after = sync.account.balance()
    spent = before.balance - after.balance  # every send freezes its price at once
    expected = (price or Decimal(0)) * 2 * args.messages
    ours_rate, seed_rate = args.messages / ours, args.messages / seed
    print(f"gateway sends, {args.messages} single-recipient messages each way")
    print(
        f"  kedacore AsyncKedaClient (concurrency {args.concurrency}): "
        f"{ours_rate:,.0f} sends/s ({ours:.2f} s)   target ≥ 500/s"
    )
    print(f"  seed approach (requests.post, sequential):  {seed_rate:,.0f} sends/s ({seed:.2f} s)")
    print(f"  ratio {ours_rate / seed_rate:.1f}×   target ≥ 3×")
    print(f"  money check: {spent} {after.currency} left the balance, expected {expected}")
    if spent != expected:
        raise SystemExit("money check failed")


if __name__ == "__main__":
    main()
