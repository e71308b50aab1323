"""The Status page's lookups (console.messaging.lookup) against the real gateway, no Streamlit.

``refresh`` asks about what the ledger does not know for certain — in batches where the
service can — records every answer round by round, and reports progress between rounds,
where the page's Stop interrupts it; ``summarize`` is what the page says about the result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import anyio
import pytest

from console.messaging.lookup import Refresh, refresh, rows_for, summarize
from kedacore import AsyncKedaClient, KedaClient
from kedacore.ledger import Ledger
from tests.support import phone_numbers


def unknown_ids(count: int) -> list[str]:
    return [f"msg_{0xC0FFEE000000 + i:012x}" for i in range(count)]


def count_requests(gateway) -> Counter:
    limiter = gateway.app.state.gateway.limiter
    seen: Counter = Counter()
    original = limiter.acquire

    def acquire(key: object) -> float:
        seen["requests"] += 1
        return original(key)

    limiter.acquire = acquire
    return seen


@pytest.fixture
def setup(gateway, ledger_url: Callable[..., str]):
    account = gateway.create_account(balance="1000")
    ledger = Ledger(ledger_url())
    keys = (account.api_key, account.encryption_key)
    with KedaClient(*keys, base_url=gateway.base_url, backup_url=gateway.base_url) as client:
        recorded = client.sms.send("US", phone_numbers("US", 300), "Recorded")
        ledger.record_send(recorded, country="US", sender=None, content="Recorded")
        elsewhere = client.sms.send("US", phone_numbers("US", 200, start=300), "Another tool")
    yield gateway, account, ledger, recorded, elsewhere
    ledger.close()


def run(gateway, account, ledger, msgids, **kwargs) -> Refresh:
    async def main() -> Refresh:
        keys = (account.api_key, account.encryption_key)
        url = gateway.base_url
        async with AsyncKedaClient(*keys, base_url=url, backup_url=url) as client:
            return await refresh(ledger, client, msgids, **kwargs)

    return anyio.run(main)


def test_what_the_ledger_lacks_is_asked_in_batches_and_recorded(setup) -> None:
    gateway, account, ledger, recorded, elsewhere = setup
    gateway.wait_for_status(account, elsewhere.messages[-1].msgid)
    known = [m.msgid for m in recorded.messages]
    other = [m.msgid for m in elsewhere.messages]
    missing = unknown_ids(500)
    msgids = known + other + missing
    seen = count_requests(gateway)
    progress: list[tuple[int, int]] = []
    found = run(
        gateway,
        account,
        ledger,
        msgids,
        on_progress=lambda done, total, result: progress.append((done, total)),
    )
    assert seen["requests"] <= 3, seen  # the task in one, the 700 others in one batch
    assert set(found.api_only) == set(other)
    assert found.not_found == set(missing) and not found.errors and not found.pending
    assert progress[-1] == (1000, 1000) and progress == sorted(progress)
    assert all(m.status != "QUEUED" for m in ledger.messages_many(known))  # recorded
    rows = rows_for(ledger, msgids, found.api_only, "USD")
    summary = summarize(msgids, rows, found.not_found, found.errors, found.pending)
    assert summary.headline() == "1,000 ids: 500 found, 500 unknown to the service"
    assert list(summary.missing_frame()["msgid"]) == missing


def test_a_stopped_lookup_keeps_what_it_learnt(setup) -> None:
    gateway, account, ledger, recorded, _ = setup
    router = gateway.app.router  # a service without the batch call: one request a msgid
    router.routes = [r for r in router.routes if r.path != "/api/sms/status/batch"]
    msgids = unknown_ids(250) + [m.msgid for m in recorded.messages[:1]]
    kept: list[Refresh] = []

    class Stop(Exception):
        pass

    def on_progress(done: int, total: int, result: Refresh) -> None:
        kept.append(result)
        raise Stop  # what Streamlit does at the next element after a click on Stop

    with pytest.raises(Stop):
        run(gateway, account, ledger, msgids, on_progress=on_progress)
    (result,) = kept
    assert 0 < len(result.pending) < 251  # one round asked, not the rest
    assert result.not_found and result.not_found.isdisjoint(result.pending)
    assert ledger.lookups(msgids[-1])  # the known one was asked first, and recorded
    rows = rows_for(ledger, msgids, result.api_only, "USD")
    summary = summarize(msgids, rows, result.not_found, result.errors, result.pending)
    assert summary.unasked and summary.unknown
    assert "not looked up (stopped)" in summary.headline()


def test_the_headline_and_the_table_of_ids_without_a_status() -> None:
    ids = ["msg_000000000001", "msg_000000000002", "msg_000000000003", "msg_000000000004"]
    summary = summarize(
        ids,
        rows=[],
        not_found={"msg_000000000001"},
        errors={"msg_000000000002": "Could not reach KedaSMS"},
        pending={"msg_000000000003"},
    )
    assert summary.headline() == (
        "4 ids: 0 found, 2 unknown to the service, 1 could not be looked up, "
        "1 not looked up (stopped)"
    )
    frame = summary.missing_frame()
    assert list(frame["msgid"]) == [ids[0], ids[3], ids[1], ids[2]]
    assert frame["Why"].tolist()[2] == "could not be looked up: Could not reach KedaSMS"
    assert summary.failures() == [(1, "Could not reach KedaSMS")]
