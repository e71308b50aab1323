"""Placeholder while Step 8 is built."""

import streamlit as st

st.write("coming")
