"""Finance → Limits — placeholder, to be built on pages/_shell.py by another author."""

from __future__ import annotations

import streamlit as st

from pages._shell import page_setup

page_setup("Limits", "The daily SMS and spend caps, the alert threshold, and who changed what.")
st.info(
    "This page is being built. Meanwhile the sidebar shows today's usage against the caps.",
    icon=":material/construction:",
)
