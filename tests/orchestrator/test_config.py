from pathlib import Path

import pytest

from orchestrator.config import DEFAULT_CONFIG, load_config, settings
from orchestrator.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_default_config_loads_embedded_defaults() -> None:
    cfg = load_config(DEFAULT_CONFIG, env={})
    assert cfg.email.transport == "file"
    assert cfg.sms.transport == "file"
    assert cfg.database_url.startswith("sqlite:///") and cfg.database_url.endswith("var/reconsent.db")


def test_environment_overrides_every_type() -> None:
    cfg = load_config(DEFAULT_CONFIG, env={
        "RECONSENT_EMAIL__HOST": "smtp.example.com",
        "RECONSENT_EMAIL__PORT": "2525",
        "RECONSENT_EMAIL__STARTTLS": "true",
        "RECONSENT_SECURITY__SIGNING_KEYS": "new-key, old-key",
        "RECONSENT_DISPATCH__RETRY_BASE_SECONDS": "1.5",
    })
    assert (cfg.email.host, cfg.email.port, cfg.email.starttls) == ("smtp.example.com", 2525, True)
    assert cfg.security.signing_keys == ["new-key", "old-key"]
    assert cfg.dispatch.retry_base_seconds == 1.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECONSENT_EMAIL__PORT": "twenty"}, "RECONSENT_EMAIL__PORT: expected a whole number"),
        ({"RECONSENT_EMAIL__TRANSPORT": "pigeon"}, "expected one of file, smtp"),
        ({"RECONSENT_EMAIL__COLOUR": "red"}, "RECONSENT_EMAIL__COLOUR: unknown setting"),
        ({"RECONSENT_NOPE__X": "1"}, "unknown section"),
        ({"RECONSENT_SMS__TRANSPORT": "twilio"}, "sms.account_sid / sms.auth_token: required"),
        ({"RECONSENT_SECURITY__SIGNING_KEYS": ""}, "security.signing_keys"),
    ],
)
def test_bad_settings_stop_with_the_key_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(DEFAULT_CONFIG, env=env)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_bad_toml_value_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[email]\nport = "x"\n')
    with pytest.raises(ConfigError, match=r"c.toml: email.port: expected a whole number"):
        load_config(path, env={})


def test_production_example_needs_only_secrets_from_env() -> None:
    env = {"RECONSENT_SECURITY__SIGNING_KEYS": "k", "RECONSENT_SECURITY__SUPPRESSION_KEY": "s",
           "RECONSENT_SMS__AUTH_TOKEN": "t"}
    cfg = load_config(ROOT / "config" / "production.example.toml", env=env)
    assert cfg.email.transport == "smtp" and cfg.sms.transport == "twilio"
    with pytest.raises(ConfigError, match="signing_keys"):
        load_config(ROOT / "config" / "production.example.toml", env={})


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [f"{s}.{k}" for s, k, _, _ in settings() if f"`{s}.{k}`" not in doc]
    assert missing == []


def test_relative_paths_resolve_from_the_config_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "config"  # even in a folder named config/ (it used to mean "the folder above")
    folder.mkdir()
    (folder / "site.toml").write_text('[database]\nurl = "sqlite:///data/r.db"\n[email]\noutbox_dir = "mail"\n')
    monkeypatch.chdir(tmp_path)
    cfg = load_config(folder / "site.toml", env={})
    assert cfg.database_url == f"sqlite:///{folder.resolve() / 'data' / 'r.db'}"
    assert cfg.path(cfg.email.outbox_dir) == folder.resolve() / "mail"


def test_with_no_config_file_the_shipped_defaults_resolve_from_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, env={})
    assert cfg.database_url == f"sqlite:///{tmp_path.resolve() / 'var' / 'reconsent.db'}"
    assert not cfg.base_dir.is_relative_to(DEFAULT_CONFIG.parent.resolve())


def test_an_instance_folders_reconsent_toml_is_read_from_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "reconsent.toml").write_text('[sender]\nname = "Maison Test"\n')
    monkeypatch.chdir(tmp_path)
    assert load_config(None, env={}).sender.name == "Maison Test"
    other = tmp_path / "other.toml"
    other.write_text('[sender]\nname = "Autre"\n')
    assert load_config(None, env={"RECONSENT_CONFIG": str(other)}).sender.name == "Autre"  # explicit wins


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("server", "port", "-1", "expected 1 to 65535, got -1"),
        ("server", "max_body_bytes", "-5", "expected 1024 to 100000000, got -5"),
        ("server", "post_rate_per_minute", "0", "expected 1 to 100000, got 0"),
        ("admin", "lockout_after", "0", "expected 1 to 100, got 0"),
        ("admin", "session_hours", "-1", "expected 1 to 720, got -1"),
        ("email", "port", "70000", "expected 1 to 65535, got 70000"),
        ("dispatch", "retry_base_seconds", "0", "expected 0.01 to 86400, got 0.0"),
        ("windows", "default_timezone", '"Mars/Olympus"', "expected an IANA time zone, e.g. Europe/Paris, got 'Mars/Olympus'"),
        ("scheduler", "timezone", '"Europe"', "expected an IANA time zone, e.g. Europe/Paris, got 'Europe'"),
    ],
)
def test_out_of_range_settings_name_the_file_key_value_and_range(tmp_path: Path, section: str, key: str,
                                                                  value: str, expected: str) -> None:
    """Issue 15: these were accepted (a made-up time zone then silently ignored)."""
    path = tmp_path / "site.toml"
    path.write_text(f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert str(err.value) == f"{path}: {section}.{key}: {expected}"
    with pytest.raises(ConfigError) as err:
        load_config(DEFAULT_CONFIG, env={f"RECONSENT_{section.upper()}__{key.upper()}": value.strip('"')})
    assert str(err.value) == f"environment variable RECONSENT_{section.upper()}__{key.upper()}: {expected}"


def test_every_numeric_setting_has_a_range_its_default_is_in_and_the_reference_shows_it() -> None:
    import dataclasses

    from orchestrator.config import Config, allowed

    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for section, key, default, _ in settings():
        f = next(f for f in dataclasses.fields(getattr(Config(), section)) if f.name == key)
        if f.type in ("int", "float"):
            lo, hi = f.metadata["range"]
            assert lo is not None and hi is not None and lo <= default <= hi, (section, key)
        if allowed(section, key):
            assert f"| {allowed(section, key)} |" in doc.split(f"`{section}.{key}`")[1].splitlines()[0]


def test_a_bad_setting_stops_any_command_with_one_line_and_exit_1(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orchestrator.cli.main import main

    path = tmp_path / "site.toml"
    path.write_text("[server]\nport = -1\n")
    for args in (["contacts", "export"], ["serve"], ["campaign", "list"]):
        result = CliRunner().invoke(main, ["--config", str(path), *args])
        assert result.exit_code == 1, result.output
        assert result.output == f"Error: {path}: server.port: expected 1 to 65535, got -1\n"
