"""Messaging → Short links through AppTest: every link reachable (paged by the service), the
total right, hand-made links apart from the tracking links of sends with *Track clicks* (a
switch labelled with the counts), search and sort by clicks.

The links are made through the client against the console's own sandbox gateway, as a user
would with a campaign and the form.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from kedacore.settings import load_settings
from tests.console.test_app import APP, clean_env, shown


@pytest.fixture
def data_dir(tmp_path: Path, ledger_url: Callable[..., str]) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        try:
            yield tmp_path
        finally:
            _runtime.reset()


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    at.switch_page("pages/links.py").run()
    assert not at.exception, at.exception
    return at


def client():
    return _runtime.runtime(load_settings(None, os.environ)).client


def heading(at: AppTest) -> str:
    return next(shown(h.value) for h in at.subheader if h.value.startswith("Your links"))


def kinds(at: AppTest) -> list[str]:
    """The switch between hand-made and tracking links, as labelled (with the counts)."""
    return list(at.segmented_control(key="links_kind").options)


def show(at: AppTest, kind: str) -> None:
    at.segmented_control(key="links_kind").set_value(kind).run()
    assert not at.exception


def captions(at: AppTest) -> list[str]:
    return [shown(c.value) for c in at.caption]


def table(at: AppTest):
    """The links shown."""
    return at.dataframe[0].value


def test_every_link_is_reachable_with_the_total_and_tracking_links_apart(data_dir: Path) -> None:
    at = start()
    keda = client()
    msgids = []
    for start_at, count in ((1000, 1000), (3000, 150)):  # a tracked campaign: 1,150 recipients
        numbers = [f"+1201555{start_at + i:04d}" for i in range(count)]
        sent = keda.sms.send("US", numbers, "Sale https://shop.example.com/s", track_click=True)
        msgids += [m.msgid for m in sent.messages]
    made = [
        keda.shortlinks.create(url, title=title)
        for url, title in [
            ("https://example.com/spring", "Spring offer"),
            ("https://example.com/menu", "Menu"),
            ("https://example.com/faq", None),
        ]
    ]
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    assert heading(at) == "Your links (1,153)"
    assert kinds(at) == ["Hand-made links (3)", "Tracking links (1,150)"]
    hand = table(at)
    assert list(hand["Short link"]) == [link.short_url for link in made[::-1]]
    assert list(hand["Title"]) == ["", "Menu", "Spring offer"]
    show(at, "tracking")
    tracking = table(at)
    assert len(tracking) == 100 and set(tracking["Message"]) <= set(msgids)
    assert "Links 1–100 of 1,150" in captions(at)

    # The last page of the tracking links: the 50 left.
    at.number_input(key="links_page_tracking").set_value(12).run()
    assert len(table(at)) == 50
    assert "Links 1,101–1,150 of 1,150" in captions(at)

    # Search: the title, the address, the code, a msgid or a number. The tracking links stay
    # shown while the counts change.
    at.text_input(key="links_search").input(msgids[234]).run()
    assert kinds(at) == ["Hand-made links (0 of 3)", "Tracking links (1 of 1,150)"]
    assert list(table(at)["Message"]) == [msgids[234]]
    at.text_input(key="links_search").input("MENU").run()
    assert kinds(at) == ["Hand-made links (1 of 3)", "Tracking links (0 of 1,150)"]
    assert not at.dataframe and "No tracking links contain" in shown(at.info[0].value)
    show(at, "manual")
    assert list(table(at)["Title"]) == ["Menu"]
    at.text_input(key="links_search").input("").run()

    # Most clicked first.
    for i in range(3):
        httpx.get(made[0].short_url, headers={"User-Agent": f"phone-{i}"})
    httpx.get(made[2].short_url)
    at.selectbox(key="links_sort").set_value("clicks").run()
    ranked = table(at)
    assert list(ranked["Short link"]) == [made[0].short_url, made[2].short_url, made[1].short_url]
    assert list(ranked["Clicks"]) == [3, 1, 0]
    assert not at.exception
