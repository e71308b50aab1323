"""The ``serve`` options of the carrier simulation, of callback delivery and of the abuse
limits."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.forwarding import parse_proxy
from gateway.simulation import PROFILE_NAMES


def non_negative(text: str) -> float:
    """A finite number ≥ 0 (argparse type)."""
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text!r}")
    return value


def _share(text: str) -> float:
    """A number from 0 to 1."""
    value = non_negative(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def _positive(text: str) -> float:
    """A finite number > 0."""
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    """A whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def add_carrier_options(serve: argparse.ArgumentParser) -> None:
    """``--profile``, the delays, the fate shares, ``--country-profiles``, the seed."""
    group = serve.add_argument_group(
        "carrier simulation",
        "A message goes QUEUED -> SENT (charged) -> DELIVERED or UNDELIVERED, or QUEUED -> "
        "FAILED (released). The options below override the profile for every country; "
        "--country-profiles overrides them per country. Fates are decided by a hash of "
        "the msgid and --carrier-seed, so a restart changes none. Magic numbers, under any "
        "profile: +15005550001 FAILED, +15005550002 SENT then UNDELIVERED, +15005550003 "
        "SENT then DELIVERED 30 s later.",
    )
    group.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default="deterministic",
        help="deterministic: every message DELIVERED within 2 s, no failures (default); "
        "realistic: 2-6%% FAILED and UNDELIVERED, 0.5-3 s to SENT and 2-8 s more to the "
        "final status depending on the country, each delay spread by ±50%%",
    )
    group.add_argument(
        "--sent-delay",
        type=non_negative,
        metavar="S",
        help="seconds from QUEUED to SENT or FAILED (deterministic: 0.5)",
    )
    group.add_argument(
        "--deliver-delay",
        type=non_negative,
        metavar="S",
        help="seconds from SENT to DELIVERED or UNDELIVERED (deterministic: 1.0)",
    )
    group.add_argument(
        "--jitter",
        type=_share,
        metavar="F",
        help="spread of each delay: uniform over delay × (1 ± F) (deterministic: 0)",
    )
    group.add_argument(
        "--failed-share", type=_share, metavar="F", help="share refused by the channel, 0-1"
    )
    group.add_argument(
        "--undelivered-share",
        type=_share,
        metavar="F",
        help="share sent (and charged) but never delivered, 0-1",
    )
    group.add_argument(
        "--country-profiles",
        type=Path,
        metavar="FILE",
        help='JSON per country, e.g. {"IN": {"sentDelay": 2, "deliverDelay": 6, '
        '"failedShare": 0.05, "undeliveredShare": 0.05, "jitter": 0.5}}; "*" means all',
    )
    group.add_argument(
        "--carrier-seed", type=int, default=0, metavar="N", help="seed of the fates (0)"
    )


def add_callback_options(serve: argparse.ArgumentParser) -> None:
    """Concurrency, timeout, backoff and dead-lettering of callback delivery."""
    group = serve.add_argument_group(
        "callbacks",
        "Status and click callbacks go out from a durable outbox, at least once, signed, "
        "retried with exponential backoff until a 2xx and dead-lettered after "
        "--callback-dead-after (see: python -m gateway outbox).",
    )
    group.add_argument(
        "--callback-concurrency",
        type=_positive_int,
        default=128,
        metavar="N",
        help="deliveries in flight at once (128); a receiver that commits in groups, "
        "like the console's, gets bigger groups from more",
    )
    group.add_argument(
        "--callback-timeout",
        type=_positive,
        default=10.0,
        metavar="S",
        help="seconds per delivery attempt (10)",
    )
    group.add_argument(
        "--callback-backoff",
        type=_positive,
        default=1.0,
        metavar="S",
        help="seconds before the second attempt, doubling after each failure (1)",
    )
    group.add_argument(
        "--callback-backoff-cap",
        type=_positive,
        default=300.0,
        metavar="S",
        help="the longest wait between two attempts (300)",
    )
    group.add_argument(
        "--callback-max-attempts",
        type=_positive_int,
        metavar="N",
        help="dead-letter after N attempts (default: by age only)",
    )
    group.add_argument(
        "--callback-dead-after",
        type=_positive,
        default=86400.0,
        metavar="S",
        help="dead-letter an event still undelivered this many seconds after it was "
        "written (86400 = 24 h)",
    )


def _count(text: str) -> int:
    """A whole number ≥ 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def _proxies(text: str) -> list[str]:
    """One or more proxy addresses or networks, comma-separated."""
    names = [name.strip() for name in text.split(",")]
    for name in names:
        try:
            parse_proxy(name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def add_abuse_options(serve: argparse.ArgumentParser) -> None:
    """``--max-tracked-urls``, ``--trusted-proxy``, ``--click-limit``, ``--click-window``."""
    group = serve.add_argument_group(
        "abuse limits",
        "Bounds on what one request or one client can make the gateway do. The client "
        "address (for uniqueClicks, the click limit and the registration rate limit) is the "
        "connection's own unless a --trusted-proxy forwarded it (docs/gateway.md, "
        '"Abuse limits").',
    )
    group.add_argument(
        "--max-tracked-urls",
        type=_positive_int,
        default=10,
        metavar="N",
        help="the most URLs a trackClick message may carry; each becomes a short link per "
        "recipient, and a send with more is refused (2001) before any is made (10)",
    )
    group.add_argument(
        "--trusted-proxy",
        "--forwarded-allow-ips",
        dest="trusted_proxies",
        type=_proxies,
        action="append",
        default=[],
        metavar="ADDR",
        help="a reverse proxy whose X-Forwarded-For (and X-Forwarded-Proto) is believed: an IP "
        "address or network, comma-separated or repeated (e.g. 127.0.0.1,::1 for a proxy on "
        "this machine). Default: none, the headers are ignored and the client is the "
        "connection's own address",
    )
    group.add_argument(
        "--click-limit",
        type=_count,
        default=10,
        metavar="N",
        help="clicks of one short link from one client address recorded per --click-window; "
        "the redirect answers every click, those past N are not counted and send no "
        "callback; 0 records every click (10)",
    )
    group.add_argument(
        "--click-window",
        type=_positive,
        default=60.0,
        metavar="S",
        help="seconds of the --click-limit window, from the first click counted (60)",
    )
