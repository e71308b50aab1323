"""The Short links page's list: every link, a page at a time, hand-made and tracking links apart.

The service pages, searches and sorts (``client.shortlinks.page``, docs/protocol.md
*Short-link lists*); this module asks it for the page shown and draws it. Tracking links are
the ones ``trackClick`` made, one per recipient of a send: a campaign of 2,000 makes 2,000, so
they are shown apart (a switch of two, each with its count) and the hand-made ones stay in
reach. The switch keeps its choice when the counts change (tabs labelled with counts would
jump back to the first when a search changes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from console.views import local_time, plain
from kedacore import KedaClient, ShortLink, ShortLinkPage

PAGE_SIZE = 100
KINDS = {"manual": "Hand-made links", "tracking": "Tracking links"}
SORTS = {"created": "Newest first", "clicks": "Most clicks first"}
EMPTY = {
    "manual": "No hand-made link yet: create one above.",
    "tracking": "No tracking link yet: send with *Track clicks* on (Send or Campaigns) and "
    "each recipient's links appear here.",
}


# -- plain functions ---------------------------------------------------------------------------


def links_frame(links: Sequence[ShortLink], tz: ZoneInfo, kind: str) -> pd.DataFrame:
    """One tab's table: hand-made links by title; tracking links by message and recipient."""
    named = (
        {"Title": [link.title or "" for link in links]}
        if kind == "manual"
        else {
            "Message": [link.msgid or "" for link in links],
            "Recipient": [link.recipient or "" for link in links],
        }
    )
    return pd.DataFrame(
        {
            **named,
            "Short link": [link.short_url for link in links],
            "Target": [link.url for link in links],
            "Clicks": [link.clicks for link in links],
            "Unique": [link.unique_clicks for link in links],
            "Last click": [local_time(link.last_click_at, tz) for link in links],
            "Created": [local_time(link.created_at, tz) for link in links],
        }
    )


def tab_label(kind: str, matching: int, total: int, searching: bool) -> str:
    """``Tracking links (1,150)``; while searching ``Hand-made links (1 of 3)``."""
    count = f"{matching:,} of {total:,}" if searching else f"{total:,}"
    return f"{KINDS[kind]} ({count})"


def rows_caption(page: ShortLinkPage) -> str:
    """``Links 101–200 of 1,150``."""
    if not page.links:
        return f"No links here: {page.total:,} in all."
    first = page.offset + 1
    return f"Links {first:,}–{page.offset + len(page.links):,} of {page.total:,}"


def pages_of(total: int) -> int:
    """How many pages ``total`` links fill (at least one)."""
    return max(1, -(-total // PAGE_SIZE))


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """What the page shows: the chosen kind's page, every kind's count with the search and
    without it."""

    kind: str
    page: ShortLinkPage
    matching: dict[str, int]
    totals: dict[str, int]
    search: str

    @property
    def total(self) -> int:
        """Every link of the account."""
        return sum(self.totals.values())


def page_key(kind: str) -> str:
    return f"links_page_{kind}"


def first_pages() -> None:
    """A new search or order starts both lists at their first page."""
    for kind in KINDS:
        st.session_state.pop(page_key(kind), None)


def read_listing(client: KedaClient, kind: str, search: str, sort: str) -> Listing:
    """The page of ``kind`` the page number in session state points at, and the counts."""
    number = int(st.session_state.get(page_key(kind), 1))

    def ask(n: int) -> ShortLinkPage:
        return client.shortlinks.page(
            offset=(n - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            kind=kind,  # type: ignore[arg-type]
            search=search or None,
            sort=sort,  # type: ignore[arg-type]
        )

    page = ask(number)
    if number > pages_of(page.total):  # fewer links than when the page was chosen
        number = pages_of(page.total)
        page = ask(number)
    st.session_state[page_key(kind)] = number

    def count(of: str, text: str | None) -> int:  # limit=0: the count alone
        return client.shortlinks.page(limit=0, kind=of, search=text).total  # type: ignore[arg-type]

    matching = {of: page.total if of == kind else count(of, search or None) for of in KINDS}
    totals = {of: count(of, None) for of in KINDS} if search else dict(matching)
    return Listing(kind, page, matching, totals, search)


# -- drawing -----------------------------------------------------------------------------------


def link_table(listing: Listing, tz: ZoneInfo) -> None:
    """The page's table, where it is in the list, the page picker, a link to copy."""
    kind, page = listing.kind, listing.page
    if not page.links:
        if listing.search:
            st.info(
                f"No {KINDS[kind].lower()} contain “{plain(listing.search)}”.",
                icon=":material/search_off:",
            )
        else:
            st.info(EMPTY[kind], icon=":material/link:")
        return
    columns = {
        "Short link": st.column_config.LinkColumn(),
        # Typed by whoever made the link: shown as text, never as a link (docs/console.md).
        "Target": st.column_config.TextColumn(),
        "Clicks": st.column_config.NumberColumn(help="Every visit", format="localized"),
        "Unique": st.column_config.NumberColumn(
            help="Distinct visitors (address and browser)", format="localized"
        ),
        "Last click": st.column_config.TextColumn(help=f"Times in {tz.key}"),
    }
    st.dataframe(
        links_frame(page.links, tz, kind),
        hide_index=True,
        width="stretch",
        column_config=columns,
        key="links_table",
    )
    where, number = st.columns([3, 1], vertical_alignment="center")
    where.caption(rows_caption(page))
    count = pages_of(page.total)
    if count > 1:
        number.number_input(
            f"Page (of {count:,})",
            min_value=1,
            max_value=count,
            step=1,
            key=page_key(kind),
        )
    by_url = {link.short_url: link for link in page.links}
    pick = st.selectbox(
        "Copy a link",
        list(by_url),
        format_func=lambda u: f"{by_url[u].title or by_url[u].msgid or by_url[u].url} — {u}",
        key="links_copy",
    )
    if pick:
        st.code(pick, language=None)
