"""Settings come from the environment, then secrets, then defaults; secrets stay hidden."""

from __future__ import annotations

from kedacore.settings import LIVE, SANDBOX, load_settings, mask


def test_sandbox_by_default_with_a_stable_webhook_token(tmp_path) -> None:
    env = {"KEDA_DATA_DIR": str(tmp_path)}
    first = load_settings(None, env)
    assert first.mode == SANDBOX
    assert first.base_url == "https://www.kedasms.net/api"
    assert first.backup_url == "https://backup.kedasms.net/api"
    assert len(first.webhook_token) >= 24
    assert load_settings(None, env).webhook_token == first.webhook_token
    assert (tmp_path / "webhook_token").stat().st_mode & 0o777 == 0o600
    assert first.ledger_url == f"sqlite:///{tmp_path.resolve() / 'ledger.db'}"


def test_environment_wins_over_secrets(tmp_path) -> None:
    secrets = {
        "keda": {
            "keda_api_key": "from-secrets-1234",
            "keda_encryption_key": "k" * 44,
            "keda_base_url": "http://secrets.example/api/",
        }
    }
    env = {"KEDA_DATA_DIR": str(tmp_path), "KEDA_BASE_URL": "http://env.example/api"}
    settings = load_settings(secrets, env)
    assert settings.mode == LIVE
    assert settings.api_key == "from-secrets-1234"
    assert settings.base_url == "http://env.example/api"
    assert "from-secrets" not in repr(settings)


def test_mask_shows_at_most_four_characters() -> None:
    assert mask("abcdefghijkl1234") == "…1234"
    assert mask("short") == "…"
    assert mask(None) == "not set"


def test_the_repr_shows_no_key_and_no_receiver_token(tmp_path) -> None:
    token = "Zq8yXk3vN5mP2wR7tB9cH4jL6dF1gS0a"
    env = {
        "KEDA_DATA_DIR": str(tmp_path),
        "KEDA_API_KEY": "ak_live_0123456789abcdef",
        "KEDA_ENCRYPTION_KEY": "k" * 44,
        "KEDA_CALLBACK_URL": f"https://console.example/hooks/keda/{token}",
        "KEDA_WEBHOOK_TOKEN": token,
        "KEDA_DATABASE_URL": "postgresql://console:db-secret-pw@db/keda",
    }
    text = repr(load_settings(None, env))
    for secret in (token, "0123456789abcdef", "k" * 44, "db-secret-pw"):
        assert secret not in text
    assert "console.example/hooks/keda/…gS0a" in text and "live" in text


def test_one_mask_and_one_set_of_default_addresses() -> None:
    import kedacore.api._http
    import kedacore.api.errors
    import kedacore.ledger.engine
    import kedacore.redaction
    import kedacore.settings

    assert kedacore.api.errors.mask is kedacore.settings.mask is kedacore.redaction.mask
    assert kedacore.api._http.DEFAULT_BASE_URL is kedacore.settings.DEFAULT_BASE_URL
    assert kedacore.api._http.DEFAULT_BACKUP_URL is kedacore.settings.DEFAULT_BACKUP_URL
    assert kedacore.ledger.engine.DEFAULT_DATA_DIR is kedacore.settings.DEFAULT_DATA_DIR


def test_a_password_on_the_command_line_is_warned_about() -> None:
    from kedacore.settings import password_warning

    said = password_warning("postgresql+psycopg://keda:S3cret@db.example/kedasms")
    assert said is not None and "KEDA_DATABASE_URL" in said and "S3cret" not in said
    assert password_warning("postgresql+psycopg://keda@/kedasms?host=/run/postgresql") is None
    assert password_warning("sqlite:////srv/keda/ledger.db") is None
    assert password_warning(None) is None
