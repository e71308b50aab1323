"""The campaign preview refuses numbers written with letters, an extension or a control
character, row by row, with the reason (``kedacore.phones``, as the gateway does)."""

from __future__ import annotations

from decimal import Decimal

from kedacore.api.types import Pricing
from kedacore.campaign.plan import preview_campaign
from kedacore.campaign.recipients import read_recipients

PRICING = Pricing("USD", {"US": Decimal("0.05")})


def test_letters_extensions_and_control_characters_are_problems_of_their_row() -> None:
    text = (
        "phone,name\n"
        "+1206555ABCD,Ann\n"  # row 2
        "1-800-FLOWERS,Bo\n"  # 3
        '"+12065550123 ext. 77",Cy\n'  # 4
        "+12065550124\x00,Dee\n"  # 5
        "(206) 555-0125,Eve\n"  # 6: fine
        "+12065550126,Fay\n"  # 7: fine
    )
    preview = preview_campaign(
        read_recipients(text.encode()), "Hi {name}", pricing=PRICING, default_country="US"
    )
    assert [row.row for row in preview.rows] == [6, 7]
    reasons = {p.row: p.reason for p in preview.problems}
    assert {p.kind for p in preview.problems} == {"invalid_number"}
    assert "letters (ABCD)" in reasons[2]
    assert "letters (FLOWERS)" in reasons[3]
    assert "extension (ext. 77)" in reasons[4]
    assert "control character (U+0000)" in reasons[5]
    assert preview.total == Decimal("0.10")
