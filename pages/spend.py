"""Finance → Spend — placeholder, to be built on pages/_shell.py by another author."""

from __future__ import annotations

import streamlit as st

from pages._shell import page_setup

page_setup("Spend", "What was spent, by day, country, sender and campaign.")
st.info(
    "This page is being built. Meanwhile the sidebar shows today's spend, and **Status** "
    "exports any set of messages with their cost as CSV.",
    icon=":material/construction:",
)
