"""Benchmark: recipients files at and over the limits — refused fast, or read within bounds.

Each case runs in a fresh child process (``--child``), so that its peak memory (VmHWM, the
peak resident set of its own image) is its own:

- bomb: a 1 MB XLSX whose one shared string unpacks to 1 GiB (the audit's file) is refused;
  also the same bomb with a zip directory that declares 1 KB (refused while unpacking), and
  an XML entity bomb (refused at its DTD). Target: ≤ 1 s and ≤ 100 MB more than before it.
- csv, xlsx: a CSV (then the same rows as a workbook) of as many rows as the default limit
  allows (KEDA_MAX_ROWS, 200,000; ``--rows`` for another count, the limit raised to it),
  bench.campaign's list (5 countries, half national numbers, a personalised template), read
  (``read_recipients``) and checked and priced (``preview_campaign``, as the console does;
  its ``plan_requests`` timed apart).
  Target: ≤ 20 s and a peak ≤ 800 MB for the process. Meanwhile the console's callback receiver
  (``kedacore.webhooks`` under uvicorn, in a thread of the same process, as in the console)
  is asked every 20 ms by another process: its answer times, idle and during the parse,
  show whether the parse starves it.

Run: python -m bench.recipients_limits [--rows 1000000] [--no-latency]
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 0.02  # between two requests of the pinger
PRICES = {"US": "0.05", "GB": "0.045", "DE": "0.06", "IN": "0.02", "BR": "0.04"}


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ``ru_maxrss``: Linux carries that
    over exec from the parent (the child would start at the parent's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# -- the children ------------------------------------------------------------------------------


def child_bomb(path: str) -> dict:
    from kedacore.campaign.recipients import RecipientsError, read_recipients

    data = Path(path).read_bytes()
    before = peak_mb()
    started = time.perf_counter()
    try:
        read_recipients(data, filename="list.xlsx")
        outcome = "read (not refused)"
    except RecipientsError as exc:
        outcome = f"refused: {exc}"
    return {
        "seconds": time.perf_counter() - started,
        "extra_mb": peak_mb() - before,
        "peak_mb": peak_mb(),
        "size_mb": len(data) / 2**20,
        "outcome": outcome,
    }


def child_csv(path: str, latency: bool, rows: int) -> dict:
    from bench.callbacks import start_receiver
    from bench.campaign import PERSONAL
    from kedacore.api.types import Pricing
    from kedacore.campaign.plan import plan_requests
    from kedacore.campaign.preview import preview_campaign
    from kedacore.campaign.recipients import read_recipients
    from kedacore.ledger import Ledger

    try:  # the limit raised to the rows asked for
        from kedacore.campaign.recipients import RecipientLimits

        default = RecipientLimits()
        scale = max(1.0, rows / default.rows)  # a workbook of more rows unpacks to more
        options = {
            "limits": RecipientLimits(
                rows=max(rows, default.rows), xlsx_mb=int(default.xlsx_mb * scale) + 1
            )
        }
    except ImportError:  # the reader before the limits
        options = {}

    pricing = Pricing("USD", {c: Decimal(p) for c, p in PRICES.items()})
    data = Path(path).read_bytes()  # the upload, as the page holds it
    result: dict = {"size_mb": len(data) / 2**20}
    with tempfile.TemporaryDirectory(prefix="keda-bench-limits-") as tmp:
        pinger = None
        if latency:
            ledger = Ledger(f"sqlite:///{Path(tmp) / 'ledger.db'}")
            url, server, thread = start_receiver(ledger, secrets.token_bytes(32))
            pinger = subprocess.Popen(
                [sys.executable, "-m", "bench.recipients_limits", "--child", "ping", url],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1.5)  # idle answers first
        result["baseline_mb"] = peak_mb()
        t0 = time.time()
        cpu = time.process_time()
        table = read_recipients(data, filename=Path(path).name, **options)
        t1 = time.time()
        preview = preview_campaign(table, PERSONAL, pricing=pricing, sender="Shop")
        t2 = time.time()
        result["peak_mb"] = peak_mb()  # read and preview: the target's figure
        plan = plan_requests(preview)
        t3 = time.time()
        result["cpu"] = time.process_time() - cpu
        result.update(
            read=t1 - t0,
            preview=t2 - t1,
            plan=t3 - t2,
            rows=len(table.rows),
            recipients=len(preview.rows),
            problems=len(preview.problems),
            requests=len(plan.requests),
            peak_with_plan_mb=peak_mb(),
        )
        if pinger is not None:
            time.sleep(0.5)
            out, _ = pinger.communicate("stop\n", timeout=60)
            samples = [tuple(map(float, line.split())) for line in out.split("\n") if line]
            idle = [ms for at, ms in samples if at < t0]
            busy = [ms for at, ms in samples if t0 <= at <= t2]
            result["latency"] = {"idle": _stats(idle), "parse": _stats(busy)}
            server.should_exit = True
            thread.join(timeout=10)
            ledger.close()
    return result


def _stats(ms: list[float]) -> dict:
    if not ms:
        return {"n": 0}
    ms = sorted(ms)
    return {
        "n": len(ms),
        "p50": statistics.median(ms),
        "p99": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
        "max": ms[-1],
    }


def child_ping(url: str) -> None:
    """Ask the receiver every 20 ms until told to stop; print (sent at, milliseconds) each."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    path = "/" + rest
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    conn = http.client.HTTPConnection(name, int(port), timeout=120)
    lines = []
    while not stop.is_set():
        at = time.time()
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=b"{}", headers={"Content-Type": "application/json"})
            conn.getresponse().read()  # 401: unsigned — checked and refused by the receiver
        except OSError:  # the receiver's process ended
            break
        lines.append(f"{at:.4f} {1000 * (time.perf_counter() - started):.3f}")
        time.sleep(INTERVAL)
    print("\n".join(lines), flush=True)


# -- the parent ----------------------------------------------------------------------------------


def recipients_xlsx(count: int) -> bytes:
    """bench.campaign's list as a workbook (inline strings, as openpyxl writes them)."""
    import io
    import zipfile
    from xml.sax.saxutils import escape

    from bench.campaign import recipients_csv
    from tests.kedacore.campaign.workbooks import workbook

    rows = []
    for r, line in enumerate(recipients_csv(count).decode().splitlines(), start=1):
        cells = "".join(
            f'<c r="{col}{r}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
            for col, value in zip("ABCD", line.split(","), strict=True)
        )
        rows.append(f'<row r="{r}">{cells}</row>')
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxml'
        'formats.org/spreadsheetml/2006/main"><sheetData>' + "".join(rows) + "</sheetData>"
        "</worksheet>"
    )
    data = workbook(sheet)
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    return data


def run_child(*args: str, timeout: float = 900) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.recipients_limits", "--child", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode:
        raise SystemExit(f"child {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="(default: KEDA_MAX_ROWS's default)")
    parser.add_argument("--no-latency", action="store_true", help="no receiver, no pinger")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "ping":
            child_ping(rest[0])
            return
        if kind == "bomb":
            result = child_bomb(rest[0])
        else:
            result = child_csv(rest[0], rest[1] == "1", int(rest[2]))
        print(json.dumps(result))
        return

    from bench.campaign import recipients_csv
    from kedacore.campaign.recipients import RecipientLimits
    from tests.kedacore.campaign.workbooks import entity_bomb, shared_string_bomb

    rows = args.rows or RecipientLimits().rows

    failures = []
    with tempfile.TemporaryDirectory(prefix="keda-bench-limits-") as tmp:
        print("Refused workbooks (each in a fresh process; target ≤ 1 s, ≤ 100 MB more)")
        bombs = {
            "1 GiB shared string": shared_string_bomb(1 << 30),
            "same, directory says 1 KB": shared_string_bomb(1 << 30, declared=1024),
            "XML entity bomb (DTD)": entity_bomb(),
        }
        for label, data in bombs.items():
            path = Path(tmp) / "bomb.xlsx"
            path.write_bytes(data)
            r = run_child("bomb", str(path))
            ok = r["seconds"] <= 1 and r["extra_mb"] <= 100 and r["outcome"].startswith("ref")
            failures += [] if ok else [label]
            print(
                f"  {label:<27} {r['size_mb']:5.2f} MB file: {r['seconds']:.3f} s, "
                f"+{r['extra_mb']:.0f} MB (peak {r['peak_mb']:.0f} MB)  {'ok' if ok else 'FAIL'}"
            )
            print(f"    {r['outcome'][:150]}")

        for kind, build in (("csv", recipients_csv), ("xlsx", recipients_xlsx)):
            path = Path(tmp) / f"recipients.{kind}"
            path.write_bytes(build(rows))
            print(
                f"\n{rows:,}-row {kind.upper()} ({path.stat().st_size / 2**20:.1f} MB), read and "
                "previewed (target ≤ 20 s, peak ≤ 800 MB)"
            )
            r = run_child("csv", str(path), "0" if args.no_latency else "1", str(rows))
            total = r["read"] + r["preview"]
            ok = total <= 20 and r["peak_mb"] <= 800 and r["recipients"] == rows
            failures += [] if ok else [kind]
            print(
                f"  read {r['read']:.2f} s + preview {r['preview']:.2f} s = {total:.2f} s; "
                f"peak {r['peak_mb']:.0f} MB (process before the read: {r['baseline_mb']:.0f} MB)"
                f"  {'ok' if ok else 'FAIL'}"
            )
            print(
                f"  {r['recipients']:,} recipients, {r['problems']:,} problems; then "
                f"plan_requests {r['plan']:.2f} s ({r['requests']:,} requests), peak "
                f"{r['peak_with_plan_mb']:.0f} MB; CPU {r['cpu']:.2f} s in all"
            )
            if "latency" in r:
                idle, busy = r["latency"]["idle"], r["latency"]["parse"]
                print(
                    f"  receiver answer time, idle: median {idle['p50']:.1f} ms, max "
                    f"{idle['max']:.1f} ms ({idle['n']} requests); during read + preview: median "
                    f"{busy['p50']:.1f} ms, p99 {busy['p99']:.1f} ms, max {busy['max']:.1f} ms "
                    f"({busy['n']} requests)"
                )
    if failures:
        raise SystemExit(f"over target: {', '.join(failures)}")


if __name__ == "__main__":
    main()
