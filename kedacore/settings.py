"""The console's configuration: environment first, then the ``[keda]`` section of secrets.

No Streamlit here: the console passes ``st.secrets`` in as a plain mapping.
"""

from __future__ import annotations

import os
import secrets as _secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedacore.private import write_private
from kedacore.redaction import mask as mask  # kedacore.settings.mask: pages import it here
from kedacore.redaction import redact_url

# The one place for the defaults of DESIGN.md's configuration table (the client's too).
DEFAULT_BASE_URL = "https://www.kedasms.net/api"
DEFAULT_BACKUP_URL = "https://backup.kedasms.net/api"
DEFAULT_DATA_DIR = ".kedasms"

SANDBOX = "sandbox"
LIVE = "live"


@dataclass(frozen=True)
class Settings:
    """Resolved settings; ``mode`` is sandbox unless an API key and encryption key are set."""

    api_key: str | None = field(default=None, repr=False)
    encryption_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    backup_url: str = DEFAULT_BACKUP_URL
    callback_url: str | None = None
    webhook_token: str = field(default="", repr=False)
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    database_url: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # the callback URL carries the receiver's token
        return (
            f"Settings(mode={self.mode!r}, base_url={redact_url(self.base_url)!r}, "
            f"backup_url={redact_url(self.backup_url)!r}, "
            f"callback_url={redact_url(self.callback_url) if self.callback_url else None!r}, "
            f"data_dir={str(self.data_dir)!r})"
        )

    @property
    def mode(self) -> str:
        return LIVE if self.api_key and self.encryption_key else SANDBOX

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'ledger.db').resolve()}"


def _lookup(name: str, env: Mapping[str, str], section: Mapping[str, Any]) -> str | None:
    value = env.get(name)
    if value in (None, ""):
        value = section.get(name.lower())
    if value in (None, ""):
        return None
    return str(value).strip()


def webhook_token(data_dir: Path) -> str:
    """The receiver's secret path part: generated once, kept in the data folder (mode 0600)."""
    path = data_dir / "webhook_token"
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = _secrets.token_urlsafe(24)
    write_private(path, token)
    return token


def load_settings(
    secrets: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Settings from the environment, then ``secrets["keda"]``, then the defaults.

    Args:
        secrets: the parsed ``.streamlit/secrets.toml`` (``st.secrets``), or None.
        env: the environment; ``os.environ`` by default.
    """
    env = os.environ if env is None else env
    section: Mapping[str, Any] = {}
    if secrets is not None:
        try:
            section = secrets.get("keda") or {}
        except Exception:  # st.secrets raises when no secrets file exists
            section = {}

    def get(name: str) -> str | None:
        return _lookup(name, env, section)

    data_dir = Path(get("KEDA_DATA_DIR") or DEFAULT_DATA_DIR)
    return Settings(
        api_key=get("KEDA_API_KEY"),
        encryption_key=get("KEDA_ENCRYPTION_KEY"),
        base_url=(get("KEDA_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
        backup_url=(get("KEDA_BACKUP_URL") or DEFAULT_BACKUP_URL).rstrip("/"),
        callback_url=get("KEDA_CALLBACK_URL"),
        webhook_token=get("KEDA_WEBHOOK_TOKEN") or webhook_token(data_dir),
        data_dir=data_dir,
        database_url=get("KEDA_DATABASE_URL"),
    )


def password_warning(url: str | None) -> str | None:
    """What to say when a database URL given on a command line carries a password: every user
    of the machine sees a process's arguments (``ps``); the environment is the place for it."""
    if not url or "://" not in url:
        return None
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # not a URL SQLAlchemy reads: its own error says so later
        return None
    if not password:
        return None
    return (
        "warning: the database password is on the command line, where every user of this "
        "machine can read it (ps); put the URL in KEDA_DATABASE_URL (an EnvironmentFile, "
        "mode 0600) instead"
    )
