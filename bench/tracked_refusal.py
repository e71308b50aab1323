"""Benchmark: gateway CPU to refuse a tracked send of 127 URLs to 1,000 recipients.

The request of the audit's denial of service: `trackClick`, 1,000 recipients and a text of
127 URLs (10 segments as written, 28 once every URL is a short link), refused with 2001.
It used to make 127,000 codes and rewrite every text first (~1.3 s of the event loop,
nothing charged). Measured against one separately started `python -m gateway serve` (rate
limit off) as the CPU time of the gateway process (/proc, user + system), with its idle CPU
over the same time (the carrier's and callback sender's polling) taken off. For comparison,
on the same gateway: a normal single-recipient send (concurrency 16, as `bench.gateway_send`)
and an accepted tracked send of 10 URLs to 1,000 recipients (10,000 short links, the most
the default --max-tracked-urls allows).

Run: python -m bench.tracked_refusal [--refusals 200] [--sends 2000] [--tracked 5]
Target on the 2-core machine: refusing ≤ 5 ms of gateway CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from bench._gateway import RunningGateway, running_gateway
from kedacore import AsyncKedaClient
from kedacore.envelope import seal

MANY_URLS = " ".join(["http://a.io"] * 127)  # 1,523 characters: 10 segments
TEN_URLS = "Sale! " + " ".join(f"https://shop.example/item/{i}" for i in range(10))


def numbers(start: int, count: int) -> list[str]:
    return [f"+1206{2_000_000 + start + i:07d}" for i in range(count)]


def idle_cpu(gw: RunningGateway, seconds: float) -> float:
    """The gateway's CPU per second while it serves nothing (its background polling)."""
    cpu, t0 = gw.cpu_seconds(), time.perf_counter()
    time.sleep(seconds)
    return (gw.cpu_seconds() - cpu) / (time.perf_counter() - t0)


def measured(gw: RunningGateway, idle: float, run) -> tuple[float, float]:
    """(gateway CPU seconds less its idle share, wall seconds) of ``run()``."""
    cpu, t0 = gw.cpu_seconds(), time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    return max(0.0, gw.cpu_seconds() - cpu - idle * wall), wall


def refusals(gw: RunningGateway, count: int, idle: float) -> tuple[float, float]:
    payload = {
        "countryCode": "US",
        "phoneNumbers": numbers(0, 1000),
        "content": MANY_URLS,
        "trackClick": True,
    }
    # Sealed beforehand: only the gateway's side is measured (one request at a time).
    bodies = [seal(payload, gw.encryption_key, api_key=gw.api_key) for _ in range(count)]
    url = gw.base_url + "/sms/send"
    with httpx.Client(timeout=600) as http:
        http.post(url, json=seal(payload, gw.encryption_key, api_key=gw.api_key))  # warm-up

        def run() -> None:
            for body in bodies:
                answer = http.post(url, json=body).json()
                assert answer["code"] == "2001", answer

        cpu, wall = measured(gw, idle, run)
    return cpu / count, wall / count


def normal_sends(gw: RunningGateway, count: int, concurrency: int, idle: float) -> float:
    async def go() -> tuple[float, float]:
        gate = asyncio.Semaphore(concurrency)
        async with AsyncKedaClient(
            gw.api_key, gw.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
        ) as client:

            async def one(number: str) -> None:
                async with gate:
                    await client.sms.send("US", [number], "Your verification code is 123456")

            await one(numbers(5000, 1)[0])  # warm-up
            cpu, t0 = gw.cpu_seconds(), time.perf_counter()
            await asyncio.gather(*(one(n) for n in numbers(10_000, count)))
            return gw.cpu_seconds() - cpu, time.perf_counter() - t0

    cpu, wall = asyncio.run(go())
    return max(0.0, cpu - idle * wall) / count


def tracked_sends(gw: RunningGateway, count: int, idle: float) -> float:
    bodies = [
        seal(
            {
                "countryCode": "US",
                "phoneNumbers": numbers(20_000 + 1000 * i, 1000),
                "content": TEN_URLS,
                "trackClick": True,
            },
            gw.encryption_key,
            api_key=gw.api_key,
        )
        for i in range(count)
    ]
    url = gw.base_url + "/sms/send"
    with httpx.Client(timeout=600) as http:

        def run() -> None:
            for body in bodies:
                answer = http.post(url, json=body).json()
                assert answer["code"] == "0", answer

        cpu, _wall = measured(gw, idle, run)
    return cpu / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refusals", type=int, default=200)
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tracked", type=int, default=5, help="accepted tracked sends")
    args = parser.parse_args()

    with running_gateway() as gw:
        idle = idle_cpu(gw, 2.0)
        refusal_cpu, refusal_wall = refusals(gw, args.refusals, idle)
        send_cpu = normal_sends(gw, args.sends, args.concurrency, idle)
        tracked_cpu = tracked_sends(gw, args.tracked, idle) if args.tracked else None
        with httpx.Client() as http:
            links = http.get(
                gw.base_url + "/shortlinks", headers={"X-Api-Key": gw.api_key}, params={"limit": 1}
            ).json()["data"]
    if args.tracked:
        assert links, "the accepted tracked sends made no short link"
    print(f"gateway CPU, idle polling {idle * 1000:.1f} ms/s taken off")
    print(
        f"  refusing a tracked send, 1,000 recipients × 127 URLs ({args.refusals} sequential): "
        f"{refusal_cpu * 1000:.2f} ms CPU, {refusal_wall * 1000:.1f} ms round trip   "
        "target ≤ 5 ms"
    )
    print(
        f"  normal send, 1 recipient ({args.sends}, concurrency {args.concurrency}): "
        f"{send_cpu * 1000:.3f} ms CPU"
    )
    if tracked_cpu is not None:
        print(
            f"  accepted tracked send, 1,000 recipients × 10 URLs ({args.tracked} sequential): "
            f"{tracked_cpu * 1000:.1f} ms CPU"
        )
    if refusal_cpu > 0.005:
        raise SystemExit("refusing took more than 5 ms of gateway CPU")


if __name__ == "__main__":
    main()
