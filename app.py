"""KedaSMS Console — entry point.

The console's pages (Messaging, Finance, Account) arrive with Step 3 of the plan; until then
this page says what exists and how to use it from Python.
"""

import streamlit as st

st.set_page_config(page_title="KedaSMS Console", page_icon="✉️", layout="wide")

st.title("KedaSMS Console")
st.info(
    "The console's pages are being built. Today the project ships `kedacore` (the client "
    "library) and `gateway` (a KedaSMS-compatible service for the sandbox and the tests).",
    icon="🚧",
)
st.markdown(
    """
**What works now**

- `python -m gateway serve` — a local KedaSMS-compatible service on port 8787
  (sandbox: no real SMS is sent).
- `python -m gateway account create --db .kedasms/gateway.db --email you@example.com` —
  an account with a starting balance; prints its API key and encryption key.
- `kedacore.KedaClient` / `AsyncKedaClient` — send, status, limits, balance, pricing,
  short links, with the AES-GCM envelope of the KedaSMS guide.

**Coming next**: Send and campaigns, message status, short links (Messaging);
spend, caps and delivery analytics (Finance); settings and sandbox account (Account).
See `README.md` and `docs/`.
"""
)
