"""Messaging → Campaigns — placeholder, to be built on pages/_shell.py by another author."""

from __future__ import annotations

import streamlit as st

from pages._shell import page_setup

page_setup("Campaigns", "Many recipients from a CSV, each with their own variables.")
st.info(
    "This page is being built: upload a CSV of recipients, write a template with {name} "
    "placeholders, preview it per recipient, see the cost before confirming, and send in a "
    "way that can be resumed. Meanwhile, **Send** takes up to 1,000 numbers at once.",
    icon=":material/construction:",
)
