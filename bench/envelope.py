"""Benchmark: seal + open of a 1 KiB payload through kedacore.envelope (median µs).

Run: python -m bench.envelope [--rounds 20000]
Target on the 2-core machine: median ≤ 30 µs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from kedacore import envelope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args()

    key = envelope.generate_key()
    payload = json.dumps({"content": "x" * 1000, "countryCode": "US"}).encode()[:1024]
    payload = payload.ljust(1024, b" ")
    assert len(payload) == 1024
    now = time.time()

    for _ in range(1000):  # warm-up
        envelope.open_body(envelope.seal(payload, key, api_key="bench"), key, now=now)

    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(args.rounds):
        t0 = clock()
        body = envelope.seal(payload, key, api_key="bench")
        plain = envelope.open_body(body, key, now=now)
        samples.append((clock() - t0) / 1000)
    assert plain == payload
    samples.sort()
    p99 = samples[int(len(samples) * 0.99)]
    print(f"envelope seal+open, 1 KiB payload, {args.rounds} rounds")
    print(f"  median {statistics.median(samples):.1f} µs   p99 {p99:.1f} µs   target ≤ 30 µs")


if __name__ == "__main__":
    main()
