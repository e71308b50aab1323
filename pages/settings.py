"""Account → Settings: connection test, addresses, keys (masked) and, in sandbox, accounts."""

from __future__ import annotations

import os
import time
from decimal import Decimal

import httpx
import pandas as pd
import streamlit as st

from console.shell import account_changed, advice, keda_errors, page_setup
from console.views import money, plain
from kedacore import KedaError
from kedacore.money import MoneyError, to_decimal
from kedacore.settings import mask
from kedacore.team import Permission

console = page_setup(
    "Settings",
    "Where this console connects, and its sandbox accounts.",
    need_connection=False,
    needs=(Permission.SETTINGS, Permission.TOPUP),
)
rt = console.runtime
settings = console.settings


def timed(name: str, call) -> dict:
    """Run one call of the connection test: what it answered, or what went wrong."""
    started = time.perf_counter()
    try:
        detail = call()
        ok = "OK"
    except KedaError as exc:
        detail, ok = advice(exc, sandbox=console.sandbox, markdown=False), "Failed"
    return {
        "Check": name,
        "Outcome": ok,
        "Time (ms)": round((time.perf_counter() - started) * 1000),
        "Detail": detail,
    }


st.subheader("Connection")
if st.button("Test the connection", key="settings_test", type="primary"):
    checks = [
        timed(
            "Pricing (front-end proxy, no key)",
            lambda: f"{len(console.client.pricing().prices)} countries priced",
        ),
        timed(
            "Balance (back end, API key)",
            lambda: money(console.client.account.balance().balance, console.currency),
        ),
        timed(
            "Limits (back end, API key)",
            lambda: f"{console.client.limits.get().usage.sms_sent} SMS today",
        ),
    ]
    st.dataframe(pd.DataFrame(checks), hide_index=True, width="stretch", key="settings_checks")
    if all(c["Outcome"] == "OK" for c in checks):
        st.success("Everything answers.", icon=":material/check_circle:")

st.subheader("Addresses in use")
token = settings.webhook_token


def hide_token(url: str) -> str:
    """A callback URL as a page may show it: the webhook token masked like any secret."""
    return url.replace(token, mask(token)) if token else url


rows = [
    ("Mode", "Sandbox (embedded gateway)" if console.sandbox else "Live"),
    ("Front-end proxy (send, short links)", rt.base_url),
    ("Back end (status, limits, balance)", rt.backup_url),
    ("Short links point to", rt.short_link_base + "/s/…"),
    ("Callback URL sent with each message", hide_token(console.callback_url)),
    ("This console's receiver", hide_token(rt.receiver_url(console.port))),
    ("Ledger", console.ledger.url),
    ("Data folder", str(settings.data_dir.resolve())),
]
st.dataframe(
    pd.DataFrame(rows, columns=["What", "Address"]),
    hide_index=True,
    width="stretch",
    key="settings_addresses",
)
st.markdown("**Callback URL for KedaSMS** (status and click callbacks land in the ledger):")
st.code(hide_token(console.callback_url), language=None)
token_source = (
    "KEDA_WEBHOOK_TOKEN"
    if os.environ.get("KEDA_WEBHOOK_TOKEN")
    else f"the file {settings.data_dir.resolve() / 'webhook_token'}"
)
st.caption(
    "Every send carries this URL as its callbackUrl, so KedaSMS needs no setting of its own. "
    f"The last part is the secret webhook token, shown masked; it is in {token_source}. "
    + (
        "Set by KEDA_CALLBACK_URL."
        if settings.callback_url
        else "For the real service the address must be reachable from the internet: put the "
        "console behind a public address and set KEDA_CALLBACK_URL to "
        "https://<that address>/hooks/keda/<token>."
    )
)

st.subheader("Keys")
key_rows = [
    ("API key", mask(rt.api_key)),
    ("Encryption key", mask(rt.encryption_key)),
    ("Webhook token (part of the callback URL)", mask(settings.webhook_token)),
]
st.dataframe(
    pd.DataFrame(key_rows, columns=["Key", "Value (last 4 characters)"]),
    hide_index=True,
    width="stretch",
    key="settings_keys",
)
if console.sandbox:
    st.caption(
        f"The sandbox account is `{rt.account.email if rt.account else '?'}`; its keys are "
        f"kept in {settings.data_dir / 'sandbox_account.json'} (readable by you only)."
    )
else:
    st.caption("Set in the environment or the [keda] section of .streamlit/secrets.toml.")

if not console.sandbox:
    st.stop()

gateway = rt.gateway
assert gateway is not None and rt.account is not None

st.subheader("Sandbox: register an account")
st.caption(
    "Runs the service's own sign-up: register, read the verification mail from the sandbox "
    f"outbox ({gateway.mail_folder}), verify. A new account starts with a balance of 0."
)
with st.form("settings_register_form", border=True):
    email_col, password_col = st.columns(2)
    email = email_col.text_input("E-mail", key="settings_reg_email")
    password = password_col.text_input(
        "Password (8 characters or more)", type="password", key="settings_reg_password"
    )
    register = st.form_submit_button("Register and verify", key="settings_register")

if register and (not email.strip() or len(password) < 8):
    st.error(
        "Enter an e-mail address and a password of at least 8 characters.", icon=":material/edit:"
    )
elif register:
    with keda_errors("Registration failed", sandbox=True):
        console.client.account.register(email.strip(), password)
    token = gateway.verification_token(email)
    if token is None:
        st.error(
            f"No verification mail for {plain(email)} in {gateway.mail_folder}.",
            icon=":material/mail:",
        )
        st.stop()
    with keda_errors("Verification failed", sandbox=True):
        credentials = console.client.account.verify(token)
    st.success(
        f"**{plain(credentials.email)}** is verified. Its keys are shown this once — copy "
        "them now:",
        icon=":material/key:",
    )
    st.code(
        f"KEDA_API_KEY={credentials.api_key}\nKEDA_ENCRYPTION_KEY={credentials.encryption_key}",
        language="bash",
    )
    st.caption(
        f"With them, and KEDA_BASE_URL / KEDA_BACKUP_URL set to {gateway.api_url}, another "
        "console or script uses this account against the sandbox."
    )

st.subheader("Sandbox: top up")
with st.form("settings_topup_form", border=True):
    who_col, amount_col = st.columns([3, 2])
    who = who_col.text_input("Account e-mail", value=rt.account.email, key="settings_topup_email")
    amount_text = amount_col.text_input(
        f"Amount ({console.currency})", value="50", key="settings_topup_amount"
    )
    topup = st.form_submit_button("Top up", key="settings_topup")

if topup:
    try:
        amount = to_decimal(amount_text)
        if amount <= 0:
            raise MoneyError("the amount must be positive")
        result = gateway.topup(who, amount)
    except (MoneyError, ValueError) as exc:
        st.error(f"**No top-up.** {plain(exc)}", icon=":material/error:")
    else:
        account_changed()  # the sidebar must show the new balance: draw the page again
        balance = Decimal(str(result["balance"]))
        st.session_state["settings_topup_done"] = (
            f"Added {money(amount, result['currency'])} to {plain(result['email'])}: the "
            f"balance is now {money(balance, result['currency'])}."
        )
        st.rerun()
if "settings_topup_done" in st.session_state:
    st.success(
        st.session_state.pop("settings_topup_done"), icon=":material/account_balance_wallet:"
    )


def _healthy() -> bool:
    try:
        return httpx.get(gateway.root_url + "/healthz", timeout=2).is_success
    except httpx.HTTPError:
        return False


st.caption(
    f"Sandbox gateway at {gateway.root_url}: {'running' if _healthy() else 'not answering'} · "
    f"database {gateway.db_path}"
)
