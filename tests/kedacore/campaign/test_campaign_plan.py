"""The campaign preview and plan: variables, bad rows with reasons, duplicates, grouping, cost."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kedacore.api.types import Balance, Limits, Pricing
from kedacore.campaign.plan import (
    CampaignPreview,
    check_funds,
    plan_requests,
    preview_campaign,
)
from kedacore.campaign.recipients import RecipientsError, read_recipients
from kedacore.money import to_micros
from kedacore.segments import count_segments

PRICING = Pricing("USD", {"US": Decimal("0.05"), "GB": Decimal("0.045"), "CN": Decimal("0.048")})


def preview(text: str, template: str = "Hi {name}!", **kwargs) -> CampaignPreview:
    kwargs.setdefault("default_country", "US")
    return preview_campaign(read_recipients(text.encode()), template, pricing=PRICING, **kwargs)


def test_each_row_is_rendered_priced_and_normalised_to_e164() -> None:
    p = preview(
        "phone,name,country\n"
        "(206) 200-0001,Ann,\n"  # national, default country
        "+447400000001,Bo,\n"  # E.164 keeps its own country
        "13123456789,李,CN\n",  # national, the row's country
        template="Hi {name}, 20% off today",
        sender="Shop",
    )
    assert not p.problems
    frame = p.frame()
    assert list(frame["e164"]) == ["+12062000001", "+447400000001", "+8613123456789"]
    assert list(frame["country"]) == ["US", "GB", "CN"]
    assert list(frame["row"]) == [2, 3, 4]
    assert frame["text"][0] == "Hi Ann, 20% off today"
    assert list(frame["encoding"]) == ["GSM-7", "GSM-7", "UCS-2"]
    assert list(frame["price"]) == [Decimal("0.05"), Decimal("0.045"), Decimal("0.048")]
    assert p.total == Decimal("0.143")
    assert set(frame["sender"]) == {"Shop"}


def test_bad_rows_are_listed_with_their_row_number_and_reason() -> None:
    long_name = "x" * 1600  # 11 segments of GSM-7
    p = preview(
        "phone,name,country\n"
        "+12062000001,Ann,\n"  # 2: fine
        "not a number,Bob,\n"  # 3: invalid number
        "+8613123456789,Cy,US\n"  # 4: a CN number on a US row
        "+12062000004,Dee,XX\n"  # 5: unknown country
        "+12062000005,,\n"  # 6: missing variable
        "+12062000001,Ann again,\n"  # 7: duplicate of row 2
        f"+12062000008,{long_name},\n"  # 8: over 10 segments
        "+4915100000001,Hans,\n"  # 9: no price for DE
        "+12062000010,Eve,US,extra\n"  # 10: broken row
        "+12062000011,Fay,\n"  # 11: fine
    )
    assert [r.row for r in p.rows] == [2, 11]
    kinds = {(pr.row, pr.kind) for pr in p.problems}
    assert kinds == {
        (3, "invalid_number"),
        (4, "wrong_country"),
        (5, "unknown_country"),
        (6, "missing_variable"),
        (7, "duplicate"),
        (8, "too_long"),
        (9, "unpriced_country"),
        (10, "broken_row"),
    }
    reasons = {pr.row: pr.reason for pr in p.problems}
    assert "belongs to CN, not US" in reasons[4]
    assert reasons[6] == "empty value for {name}"
    assert reasons[7] == "duplicate of row 2"
    assert "11 segments" in reasons[8]
    assert reasons[9] == "no price for country DE"
    assert p.rows_read == 10 and p.rejected_rows == 8
    # the download: every problem, readable by Excel (BOM) and by csv
    data = p.problems_csv()
    assert data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [line["row"] for line in lines] == ["3", "4", "5", "6", "7", "8", "9", "10"]
    assert lines[0] == {
        "row": "3",
        "phone": "not a number",
        "problem": "invalid_number",
        "reason": "invalid number: not a phone number",
    }


def test_a_row_with_several_problems_lists_each() -> None:
    p = preview("phone,name,code\nnope,,\n", template="Hi {name} {code}")
    assert [pr.kind for pr in p.problems] == [
        "invalid_number",
        "missing_variable",
        "missing_variable",
    ]


def test_a_duplicate_is_a_repeat_of_a_row_that_is_sent() -> None:
    # the first row with the number cannot be sent (no name): the second one is not a duplicate
    p = preview("phone,name\n+12062000001,\n+1 206 200 0001,Ann\n2062000001,Ann\n")
    assert [r.row for r in p.rows] == [3]
    assert [(pr.row, pr.kind) for pr in p.problems] == [(2, "missing_variable"), (4, "duplicate")]


def test_a_template_must_match_the_file_and_the_sender_be_valid() -> None:
    with pytest.raises(RecipientsError, match=r"\{surname\}"):
        preview("phone,name\n+12062000001,Ann\n", template="Dear {surname}")
    with pytest.raises(RecipientsError, match="sender"):
        preview("phone,name\n+12062000001,Ann\n", sender="Shop & Co")
    with pytest.raises(RecipientsError, match="default country"):
        preview("phone,name\n+12062000001,Ann\n", default_country="XX")


def test_a_sender_column_overrides_the_campaign_sender_per_row() -> None:
    p = preview(
        "phone,name,sender\n+12062000001,Ann,\n+12062000002,Bo,Outlet\n+12062000003,Cy,No Way\n",
        template="Sale",
        sender="Shop",
    )
    assert [r.sender for r in p.rows] == ["Shop", "Outlet"]
    assert [pr.kind for pr in p.problems] == ["invalid_sender"]
    plan = plan_requests(p)
    assert [(r.sender, r.recipients) for r in plan.requests] == [
        ("Shop", ("+12062000001",)),
        ("Outlet", ("+12062000002",)),
    ]


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+1206{2_000_000 + start + i:07d}" for i in range(count)]


def test_same_text_is_grouped_in_requests_of_at_most_1000() -> None:
    lines = ["phone,country"] + [f"{n},US" for n in numbers(2500)]
    lines += [f"+4474{i:08d},GB" for i in range(10)]
    p = preview("\n".join(lines), template="Spring sale: 20% off")
    plan = plan_requests(p)
    assert [(r.country, len(r.recipients)) for r in plan.requests] == [
        ("US", 1000),
        ("US", 1000),
        ("US", 500),
        ("GB", 10),
    ]
    assert [r.cost for r in plan.requests] == [
        Decimal("50"),
        Decimal("50"),
        Decimal("25"),
        Decimal("0.45"),
    ]
    assert plan.total == Decimal("125.45") == p.total
    assert plan.recipients == 2510
    assert [b.estimated_micros for b in plan.batches()] == [50_000_000] * 2 + [25_000_000, 450_000]
    assert list(plan.frame()["recipients"]) == [1000, 1000, 500, 10]


def test_personalised_text_makes_single_recipient_requests() -> None:
    lines = ["phone,name"] + [f"{n},N{i}" for i, n in enumerate(numbers(5))]
    lines.append(f"{numbers(1, 5)[0]},N0")  # the same text as the first: shares its request
    plan = plan_requests(preview("\n".join(lines), template="Hi {name}"))
    assert [len(r.recipients) for r in plan.requests] == [2, 1, 1, 1, 1]
    assert plan.requests[0].content == "Hi N0"


def test_cost_is_exact_for_long_and_unicode_texts() -> None:
    text = "Привет, {name}! " + "Скидка 20% на всё до воскресенья. " * 4  # UCS-2, 3 parts
    lines = ["phone,name"] + [f"{n},Аня" for n in numbers(3)]
    p = preview("\n".join(lines), template=text)
    info = count_segments(p.rows[0].text)
    assert (info.encoding, info.segments) == ("UCS-2", 3)
    (request,) = plan_requests(p).requests
    assert (request.segments, request.encoding) == (3, "UCS-2")
    assert request.cost == Decimal("0.05") * 3 * 3 == Decimal("0.45")
    assert to_micros(request.cost) == 450_000


def test_max_per_request_is_bounded() -> None:
    p = preview("phone,name\n+12062000001,Ann\n")
    with pytest.raises(ValueError):
        plan_requests(p, max_per_request=1001)
    assert len(plan_requests(p, max_per_request=1).requests) == 1


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 60), st.sampled_from(["US", "GB"]), st.integers(0, 3)),
        max_size=120,
    ),
    st.integers(1, 7),
)
def test_grouping_sends_every_valid_recipient_once(rows, limit) -> None:
    lines = ["phone,country,name"]
    for n, country, name in rows:
        phone = f"+1206{2_000_000 + n:07d}" if country == "US" else f"+4474{n:08d}"
        lines.append(f"{phone},{country},N{name}")
    p = preview("\n".join(lines) + "\n")
    plan = plan_requests(p, max_per_request=limit)
    sent = [number for r in plan.requests for number in r.recipients]
    assert sorted(sent) == sorted(r.e164 for r in p.rows)
    assert len(sent) == len(set(sent)) == len({(n, c) for n, c, _ in rows})
    assert all(1 <= len(r.recipients) <= limit for r in plan.requests)
    assert plan.total == p.total == sum((r.price for r in p.rows), Decimal(0))


def limits(**data) -> Limits:
    return Limits.from_wire(data)


def plan_of(count: int):
    lines = ["phone"] + numbers(count)
    return plan_requests(preview("\n".join(lines), template="Sale"))


def test_funds_fit() -> None:
    check = check_funds(plan_of(10), Balance(Decimal("0.5"), Decimal(0), "USD"), limits())
    assert check.fits and check.messages() == [] and check.shortfall == 0


def test_a_short_balance_says_by_how_much() -> None:
    check = check_funds(plan_of(10), Balance(Decimal("0.3"), Decimal(0), "USD"), limits())
    assert not check.fits and check.shortfall == Decimal("0.2")
    assert check.messages() == [
        "The balance is 0.3 USD; the campaign costs 0.5 USD: top up at least 0.2 USD."
    ]


def test_caps_that_block_are_named_with_the_excess() -> None:
    check = check_funds(
        plan_of(10),
        Balance(Decimal("100"), Decimal(0), "USD"),
        limits(
            dailySmsCap=12,
            dailySpendCap=1,
            blockOnLimit=True,
            usage={"smsSent": 5, "spend": 0.6},
        ),
    )
    assert not check.fits
    sms, spend = check.caps
    assert (sms.cap, sms.headroom, sms.needed, sms.over_by) == ("dailySmsCap", 7, 10, 3)
    assert (spend.cap, spend.headroom, spend.over_by) == (
        "dailySpendCap",
        Decimal("0.4"),
        Decimal("0.1"),
    )
    assert check.blocked_by == (sms, spend)
    assert check.messages() == [
        "dailySmsCap blocks the campaign: 5 of 12 messages used today; the campaign needs 10, "
        "3 over the cap.",
        "dailySpendCap blocks the campaign: 0.6 of 1 USD used today; the campaign needs 0.5 USD, "
        "0.1 USD over the cap.",
    ]


def test_caps_without_block_on_limit_only_warn() -> None:
    check = check_funds(
        plan_of(10),
        Balance(Decimal("100"), Decimal(0), "USD"),
        limits(dailySmsCap=5, blockOnLimit=False),
    )
    assert check.fits and check.blocked_by == ()
    assert "alert only" in check.messages()[0]
