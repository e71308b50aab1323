"""Admin → Settings: connection test, addresses, keys (masked) — an admin's — and, in sandbox,
accounts; the sandbox top-up is finance's too. Every action re-checks its permission when it
runs; a top-up of this console's account is recorded for the Statement and audited."""

from __future__ import annotations

import os
import time
from decimal import Decimal

import httpx
import pandas as pd
import streamlit as st

from console.access import require
from console.shell import account_changed, advice, keda_errors, page_setup
from console.views import money, plain
from kedacore import KedaError
from kedacore.money import MoneyError, to_decimal, to_micros
from kedacore.settings import mask
from kedacore.team import Permission, normalize_email

console = page_setup(
    "Settings",
    "Where this console connects, and its sandbox accounts.",
    need_connection=False,
    needs=(Permission.SETTINGS, Permission.TOPUP),
)
rt = console.runtime
settings = console.settings
ledger = console.ledger
can_configure = console.actor.can(Permission.SETTINGS)  # each action re-checks when it runs
can_topup = console.actor.can(Permission.TOPUP)


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


if can_configure:  # connection, addresses and keys: an admin's
    st.subheader("Connection")
    if st.button("Test the connection", key="settings_test", type="primary"):
        require(ledger, Permission.SETTINGS, "test the connection")
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
    if not can_configure:
        st.info(
            "**Top-ups of a live account are made at KedaSMS.** Once the money arrives, the "
            "balance the console reads shows it, and the Statement lists it as unexplained "
            "(money that came in outside the console) on that day.",
            icon=":material/account_balance_wallet:",
        )
    st.stop()

gateway = rt.gateway
assert gateway is not None and rt.account is not None

if can_configure:  # registering accounts: an admin's
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
            "Enter an e-mail address and a password of at least 8 characters.",
            icon=":material/edit:",
        )
    elif register:
        require(ledger, Permission.SETTINGS, "register a sandbox account")
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

if can_topup:  # finance's (and an admin's)
    st.subheader("Sandbox: top up")
    with st.form("settings_topup_form", border=True):
        who_col, amount_col = st.columns([3, 2])
        who = who_col.text_input(
            "Account e-mail", value=rt.account.email, key="settings_topup_email"
        )
        amount_text = amount_col.text_input(
            f"Amount ({console.currency})", value="50", key="settings_topup_amount"
        )
        topup = st.form_submit_button("Top up", key="settings_topup")
    st.caption(
        "A top-up of this console's account is recorded in the ledger (the Statement counts "
        "it) and in the audit log, with who made it."
    )
    if topup:
        actor = require(ledger, Permission.TOPUP, "top up an account", target=who.strip())
        try:
            amount = to_decimal(amount_text)
            if amount <= 0:
                raise MoneyError("the amount must be positive")
            result = gateway.topup(who, amount)
        except (MoneyError, ValueError) as exc:
            st.error(f"**No top-up.** {plain(exc)}", icon=":material/error:")
        else:
            cur, account = result["currency"], result["email"]
            if account == normalize_email(rt.account.email):  # this console's money
                ledger.record_topup(to_micros(amount), cur, account=account, by=actor.name)
            else:  # another sandbox account: audited, but not this console's statement
                after = {"amount": amount, "currency": cur}
                ledger.audit(actor.name, "topup", target=account, after=after)
            account_changed()  # the sidebar must show the new balance: draw the page again
            balance = Decimal(str(result["balance"]))
            st.session_state["settings_topup_done"] = (
                f"Added {money(amount, cur)} to {plain(account)}: the balance is now "
                f"{money(balance, cur)}."
            )
            st.rerun()
    if "settings_topup_done" in st.session_state:
        st.success(
            st.session_state.pop("settings_topup_done"), icon=":material/account_balance_wallet:"
        )


if can_configure:
    try:
        healthy = httpx.get(gateway.root_url + "/healthz", timeout=2).is_success
    except httpx.HTTPError:
        healthy = False
    st.caption(
        f"Sandbox gateway at {gateway.root_url}: {'running' if healthy else 'not answering'} · "
        f"database {gateway.db_path}"
    )
