"""User text is shown as text on every page: no link, no image, no markup is made from it.

A campaign, a short link, team controls, a member's removal, a top-up and searches are made
with hostile text (Markdown links and images, bare URLs that Streamlit's Markdown would
autolink, an e-mail address, HTML); then every element Streamlit renders as Markdown —
bodies, captions, alerts, labels, ``help=`` tooltips, metric labels, expander and tab labels,
dialog titles, progress texts — is read from the page's tree and must not hold any of it raw.
Plotly labels too (Plotly reads ``<a href>`` in them). The browser's view of the same is in
``tests/browser/test_plain_text.py``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.message import Message
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.views import plain
from kedacore.ledger import StatusUpdate
from kedacore.settings import load_settings
from tests.console.test_app import PAGES, shown, start
from tests.console.test_app_campaigns import campaign_ids, wait_for_the_run

HOSTILE = (
    "[click](https://evil.example/c) ![x](https://evil.example/i.png) https://evil.example/u "
    '**bold** www.evil.example/w x@evil.example <a href="https://evil.example/a">a</a> :red[r]'
)
# What Streamlit's Markdown turns into a link, an image or markup when it is there as written
# (not after a backslash, which makes the character literal).
RAW = [
    re.compile(r"(?<!\\)" + re.escape(raw))
    for raw in ("](https://evil", "](//evil", "https://evil", "www.evil", "@evil", "<a ", ":red[")
]
MARKDOWN_FIELDS = {"body", "label", "help", "text", "title"}
PLAIN_ELEMENTS = {"text", "code", "dataframe", "arrow_data_frame", "plotly_chart", "json"}


def markdown_texts(node: object) -> Iterator[tuple[str, str]]:
    """Every string of the page that Streamlit renders as Markdown, with where it is."""
    kind = getattr(node, "type", None)
    proto = getattr(node, "proto", None)
    if isinstance(proto, Message) and kind not in PLAIN_ELEMENTS:
        yield from _strings(proto, str(kind))
    for child in getattr(node, "children", {}).values():
        yield from markdown_texts(child)


def _strings(message: Message, where: str) -> Iterator[tuple[str, str]]:
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        for item in values:
            if isinstance(item, Message):
                yield from _strings(item, f"{where}.{field.name}")
            elif isinstance(item, str) and field.name in MARKDOWN_FIELDS:
                yield f"{where}.{field.name}", item


def chart_texts(at: AppTest) -> list[str]:
    """Every string of the page's Plotly figures (labels, hover texts, titles)."""

    def strings(value: object) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)

    return [t for e in at.get("plotly_chart") for t in strings(json.loads(e.proto.spec))]


def check(at: AppTest, where: str) -> list[str]:
    """No Markdown text of the page holds hostile text raw; returns them all, as shown."""
    assert not at.exception, (where, at.exception)
    found = list(markdown_texts(at._tree))
    for place, text in found:
        for raw in RAW:
            assert not raw.search(text), f"{where}: {place} renders {raw.pattern} raw: {text!r}"
    for table in at.dataframe:  # a link column makes a clickable link of each cell
        config = json.loads(table.proto.columns or "{}")
        for column, options in config.items():
            if options.get("type_config", {}).get("type") == "link" and column in table.value:
                cells = [str(v) for v in table.value[column]]
                assert not any("evil.example" in c for c in cells), f"{where}: {column} links"
    for text in chart_texts(at):
        assert "<a " not in text, f"{where}: a chart label makes a link: {text!r}"
    return [shown(text) for _, text in found]


def runtime() -> _runtime.Runtime:
    return _runtime.runtime(load_settings(None, os.environ))


def test_plain_keeps_the_text_and_breaks_every_markup() -> None:
    for text in [HOSTILE, "a\\b `c` $x$ :material/home: 1. ~s~ | & &amp; WWW.EVIL.EXAMPLE", ""]:
        escaped = plain(text)
        assert shown(escaped) == text
        assert not any(raw.search(escaped) for raw in RAW), escaped
        assert not re.search(r"(?<!\\)[\[\]()*_`<>!$&:~|]", escaped), escaped
    assert plain("Spring sale 2026") == "Spring sale 2026"  # plain words stay as they are
    assert plain("two\nlines\r\nhere") == "two lines here"  # one paragraph: no new block


def test_hostile_user_text_is_plain_text_on_every_page(data_dir: Path) -> None:
    # -- a campaign named, and a file headed, with hostile text ----------------------------
    at = start("pages/campaigns.py")
    column = "[c](https://evil.example/col)"
    data = (
        f"phone,name,{column}\n+12062000001,Ann,x\n+12062000002,Bo,y\n"
        "![x](https://evil.example/p.png),Cy,z\n"
    ).encode()
    at.text_input(key="campaigns_name").input(HOSTILE).run()
    at.file_uploader(key="campaigns_file").upload("www.evil.example.csv", data, "text/csv").run()
    at.text_area(key="campaigns_template").input("Hi {name}").run()
    texts = check(at, "new campaign")
    assert any("{" + column + "}" in t for t in texts)  # the placeholders, shown as typed
    at.button(key="campaigns_submit").click().run()
    assert any(HOSTILE in t for t in check(at, "confirm dialog"))
    at.button(key="campaigns_confirm").click().run()
    (campaign_id,) = campaign_ids()
    wait_for_the_run(campaign_id)
    at.run()
    assert any(f"#{campaign_id} {HOSTILE}" in t for t in check(at, "campaign list"))

    # -- a short link titled with hostile text, to a hostile address -------------------------
    at.switch_page("pages/links.py").run()
    at.text_input(key="links_url").input("https://evil.example/landing")
    at.text_input(key="links_title").input(HOSTILE)
    at.button(key="links_create").click().run()
    check(at, "short links")
    assert any(HOSTILE in list(d.value.get("Title", [])) for d in at.dataframe)  # listed

    # -- searches and numbers typed with hostile text -----------------------------------------
    at.switch_page("pages/status.py").run()
    at.text_input(key="status_query").input(HOSTILE)
    at.button(key="status_lookup").click().run()
    assert any(HOSTILE in t for t in check(at, "status search"))
    at.text_area(key="status_list").input(f"msg_nothex\n{HOSTILE}").run()
    at.button(key="status_lookup_many").click().run()
    check(at, "status list")

    at.switch_page("pages/send.py").run()
    at.text_area(key="send_numbers").input(f"+12062000003\n{HOSTILE}").run()
    # shown as typed, up to the 64 characters a number may have (kedacore.phones)
    assert any(HOSTILE[:64] in t for t in check(at, "send numbers"))
    at.text_area(key="send_numbers").input("+12062000003").run()
    at.text_input(key="send_sender").input("[a](//evil.ex)").run()
    at.text_area(key="send_content").input("Hello").run()
    # Refused on the form (the gateway's rule, kedacore.senders), the id shown as typed.
    assert any("[a](//evil.ex)" in t for t in check(at, "send sender"))
    assert at.button(key="send_submit").disabled
    at.text_input(key="send_sender").input("").run()
    at.text_area(key="send_content").input(HOSTILE).run()
    at.button(key="send_submit").click().run()
    check(at, "send dialog")
    at.button(key="send_confirm").click().run()
    check(at, "recent sends")  # the text is a cell of the Recent sends table
    assert any(
        d.value["Message"].str.startswith("[click](https://evil").any()
        for d in at.dataframe
        if "Message" in d.value
    )

    # -- a cap change (recorded as the actor: nothing typed), hostile team controls ------------
    at.switch_page("pages/limits.py").run()
    at.text_input(key="limits_sms_cap").input("1000")
    at.button(key="limits_review").click().run()
    check(at, "limits dialog")
    at.button(key="limits_confirm").click().run()
    assert any("by local operator" in t for t in check(at, "limits changed"))
    at.text_input(key="limits_approval_threshold").input(HOSTILE)
    at.button(key="limits_controls_save").click().run()
    assert any(f"“{HOSTILE}” is not an amount" in t for t in check(at, "team controls"))

    # -- a member added, then removed for a hostile reason; the Audit page searched -----------
    at.switch_page("pages/members.py").run()
    at.text_input(key="members_invite_email").input(HOSTILE)
    at.multiselect(key="members_invite_roles").set_value(["support"])
    at.button(key="members_invite").click().run()
    assert any(repr(HOSTILE[:80]) in t for t in check(at, "members invite refused"))
    at.text_input(key="members_invite_email").input("x@evil.example")
    at.button(key="members_invite").click().run()
    assert any("x@evil.example** is a member now" in t for t in check(at, "members invited"))
    at.selectbox(key="members_pick").set_value("x@evil.example").run()
    at.button(key="members_remove").click().run()
    assert any("Remove x@evil.example?" in t for t in check(at, "members remove"))
    at.text_input(key="members_remove_reason").input(HOSTILE)
    at.button(key="members_remove_confirm").click().run()
    check(at, "members removed")
    at.switch_page("pages/audit.py").run()
    at.text_input(key="audit_text").input(HOSTILE).run()
    check(at, "audit search")
    assert any(HOSTILE in list(d.value.get("Detail", [])) for d in at.dataframe)  # a cell

    # -- a top-up of a hostile address ---------------------------------------------------------

    at.switch_page("pages/settings.py").run()
    at.text_input(key="settings_topup_email").input("x@evil.example [c](https://evil.example)")
    at.text_input(key="settings_topup_amount").input("1")
    at.button(key="settings_topup").click().run()
    assert any("x@evil.example [c](https://evil.example)" in t for t in check(at, "top-up"))
    at.text_input(key="settings_reg_email").input(HOSTILE)
    at.text_input(key="settings_reg_password").input("password1")
    at.button(key="settings_register").click().run()
    check(at, "register")

    # -- the campaign's messages charged, so the Spend charts name it; then every page ---------
    ledger = runtime().ledger
    ledger.apply_statuses(
        [
            StatusUpdate(m.msgid, "SENT", cost_micros=50_000)
            for m in ledger.messages_by_recipient("+12062000001")
        ]
    )
    for page in PAGES:
        at.switch_page(page).run()
        check(at, page)
    at.switch_page("pages/spend.py").run()
    assert any("evil.example" in text for text in chart_texts(at)), "the chart names it"
