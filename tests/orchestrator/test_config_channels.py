"""Settings added for the channels: keyword tables per locale, TLS, DKIM, bounces, Twilio pauses."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import DEFAULT_CONFIG, load_config
from orchestrator.errors import ConfigError

SPEC_STOP = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "ARRET", "ARRETE"}


def test_default_keywords_are_the_specs() -> None:
    kw = load_config(DEFAULT_CONFIG, env={}).keywords
    assert set().union(*kw.stop.values()) == SPEC_STOP
    assert set().union(*kw.start.values()) == {"START", "UNSTOP"}
    assert {"HELP", "INFO"} <= set().union(*kw.help.values())


def test_keywords_per_locale_from_toml_and_env(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[keywords]\nstop = { fr = ["STOP", "ARRET"], es = ["BAJA"] }\n', encoding="utf-8")
    assert load_config(path, env={}).keywords.stop == {"fr": ["STOP", "ARRET"], "es": ["BAJA"]}
    env = load_config(path, env={"RECONSENT_KEYWORDS__HELP": '{"de": ["HILFE"]}'})
    assert env.keywords.help == {"de": ["HILFE"]}
    with pytest.raises(ConfigError, match="RECONSENT_KEYWORDS__STOP: expected a JSON object"):
        load_config(path, env={"RECONSENT_KEYWORDS__STOP": "STOP,ARRET"})
    path.write_text('[keywords]\nstop = ["STOP"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="keywords.stop: expected a table of string lists per locale"):
        load_config(path, env={})


def test_new_email_and_sms_settings_have_env_overrides() -> None:
    cfg = load_config(DEFAULT_CONFIG, env={"RECONSENT_EMAIL__TLS_CA_FILE": "/etc/ssl/relay-ca.pem",
                                           "RECONSENT_EMAIL__SOFT_BOUNCE_LIMIT": "5",
                                           "RECONSENT_EMAIL__DKIM_DOMAIN": "boutique.example",
                                           "RECONSENT_SMS__RATE_LIMIT_PAUSE_SECONDS": "2.5"})
    assert (cfg.email.tls_ca_file, cfg.email.soft_bounce_limit, cfg.email.dkim_domain) == (
        "/etc/ssl/relay-ca.pem", 5, "boutique.example")
    assert cfg.sms.rate_limit_pause_seconds == 2.5
