"""A number written with letters, an extension or a control character is refused (2001).

Each would otherwise be sent — and charged — to a number other than the one written:
``+1206555ABCD`` to +12065552223, ``1-800-FLOWERS`` to a toll-free number, and
``+12065550123 ext. 77`` without its extension.
"""

from __future__ import annotations

import pytest

from tests.support import GatewayHandle

REFUSED = {
    "+1206555ABCD": "letters (ABCD)",
    "1-800-FLOWERS": "letters (FLOWERS)",
    "+12065550123 ext. 77": "extension (ext. 77)",
    "+12065550124;ext=9": "extension (;ext=9)",
    "(206) 555-0125 #12": "extension (#12)",
    "+12065550126\x00": "control character (U+0000)",
    "+1\u202e2065550127": "invisible character (U+202E)",
}


def test_each_such_number_is_named_with_its_reason_and_nothing_is_charged(
    gateway: GatewayHandle,
) -> None:
    account = gateway.create_account(balance="1")
    numbers = [*REFUSED, "+1 206 555 0128"]
    response = gateway.send(
        account, {"countryCode": "US", "phoneNumbers": numbers, "content": "Your code is 1234"}
    )
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["code"] == "2001"
    errors = answer["data"]["errors"]
    assert [e["field"] for e in errors] == [f"phoneNumbers[{i}]" for i in range(len(REFUSED))]
    for error, (number, reason) in zip(errors, REFUSED.items(), strict=True):
        assert error["value"] == number
        assert reason in error["message"], error
    assert gateway.money(account.email)["balance"] == 1_000_000
    assert gateway.query("SELECT count(*) FROM messages") == [(0,)]


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("+1206555ABCD", "letters are not turned into digits"),
        ("+12065550123 x77", "a text message cannot reach an extension"),
    ],
)
def test_the_reason_says_what_to_do(gateway: GatewayHandle, number: str, reason: str) -> None:
    account = gateway.create_account(balance="1")
    response = gateway.send(
        account, {"countryCode": "US", "phoneNumbers": [number], "content": "x"}
    )
    assert response.json()["code"] == "2001"
    assert reason in response.json()["message"]


def test_separators_people_write_are_still_accepted(gateway: GatewayHandle) -> None:
    account = gateway.create_account()
    numbers = [
        "(206) 555-0131",
        "+1.206.555.0132",
        "+1 (206) 555-0133",
        "\uff0b\uff11 \uff12\uff10\uff16 \uff15\uff15\uff15 \uff10\uff11\uff13\uff14",  # full-width
        "+1/206/555/0135",
        "(+1) 206\u00a0555\u20130136",
    ]
    response = gateway.send(
        account, {"countryCode": "US", "phoneNumbers": numbers, "content": "hi"}
    )
    assert response.status_code == 200, response.text
    recipients = [m["recipient"] for m in response.json()["data"]["messages"]]
    assert recipients == [f"+1206555013{i}" for i in range(1, 7)]
