"""The ``kafka_security`` settings: C2M_SYNC_KAFKA_* variables (secrets also from files),
clear errors naming the variable, and the password in no repr, dump, error or command output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sync.cli import main
from sync.config.settings import KafkaSecurity, SettingsError, load_settings

PASSWORD = "s3cr3t-Passw0rd-for-tests"


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n", "utf-8")  # only its existence matters
    return path


def sasl_ssl_env(ca_file: Path, **extra: str) -> dict[str, str]:
    return {"C2M_SYNC_BROKER_URL": "kafka://broker-1:9093,broker-2:9093",
            "C2M_SYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "C2M_SYNC_KAFKA_SASL_USERNAME": "c2m-sync",
            "C2M_SYNC_KAFKA_SASL_PASSWORD": PASSWORD,
            "C2M_SYNC_KAFKA_SSL_CAFILE": str(ca_file), **extra}


def test_default_is_plaintext_without_credentials() -> None:
    security = load_settings(environ={}).kafka_security
    assert security == KafkaSecurity()
    assert (security.security_protocol, security.uses_sasl, security.uses_ssl) == (
        "PLAINTEXT", False, False)
    assert security.describe() == "PLAINTEXT"


def test_every_variable_reaches_its_setting(ca_file: Path) -> None:
    cert, key = ca_file.with_name("client.pem"), ca_file.with_name("client.key")
    cert.write_text("x")
    key.write_text("x")
    security = load_settings(environ=sasl_ssl_env(
        ca_file, C2M_SYNC_KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        C2M_SYNC_KAFKA_SSL_CERTFILE=str(cert), C2M_SYNC_KAFKA_SSL_KEYFILE=str(key),
        C2M_SYNC_KAFKA_SSL_KEY_PASSWORD="key-pass",
        C2M_SYNC_KAFKA_SSL_CHECK_HOSTNAME="false")).kafka_security
    assert security.security_protocol == "SASL_SSL"
    assert security.sasl_mechanism == "SCRAM-SHA-256"
    assert security.sasl_username == "c2m-sync"
    assert security.sasl_password is not None
    assert security.sasl_password.get_secret_value() == PASSWORD
    assert (security.ssl_cafile, security.ssl_certfile, security.ssl_keyfile) == (
        ca_file, cert, key)
    assert security.ssl_key_password is not None
    assert security.ssl_key_password.get_secret_value() == "key-pass"
    assert security.ssl_check_hostname is False


def test_password_is_read_from_a_file_without_its_line_break(ca_file: Path,
                                                             tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n", "utf-8")
    environ = sasl_ssl_env(ca_file, C2M_SYNC_KAFKA_SASL_PASSWORD_FILE=str(secret))
    del environ["C2M_SYNC_KAFKA_SASL_PASSWORD"]
    password = load_settings(environ=environ).kafka_security.sasl_password
    assert password is not None
    assert password.get_secret_value() == PASSWORD


def test_password_and_password_file_together_are_refused(ca_file: Path,
                                                         tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("other")
    environ = sasl_ssl_env(ca_file, C2M_SYNC_KAFKA_SASL_PASSWORD_FILE=str(secret))
    with pytest.raises(SettingsError, match="set C2M_SYNC_KAFKA_SASL_PASSWORD or "
                                            "C2M_SYNC_KAFKA_SASL_PASSWORD_FILE, not both"):
        load_settings(environ=environ)


def test_unreadable_or_empty_password_file_names_variable_and_path(ca_file: Path,
                                                                   tmp_path: Path) -> None:
    environ = sasl_ssl_env(ca_file)
    del environ["C2M_SYNC_KAFKA_SASL_PASSWORD"]
    missing = tmp_path / "nowhere" / "password"
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={**environ, "C2M_SYNC_KAFKA_SASL_PASSWORD_FILE": str(missing)})
    assert "C2M_SYNC_KAFKA_SASL_PASSWORD_FILE" in str(caught.value)
    assert f"cannot read {str(missing)!r}: No such file or directory" in str(caught.value)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match=r"'.*empty' is empty"):
        load_settings(environ={**environ, "C2M_SYNC_KAFKA_SASL_PASSWORD_FILE": str(empty)})


def test_sasl_without_username_or_password_says_which_variable(ca_file: Path) -> None:
    environ = sasl_ssl_env(ca_file)
    del environ["C2M_SYNC_KAFKA_SASL_USERNAME"]
    with pytest.raises(SettingsError, match="SASL_SSL needs a SASL username "
                                            r"\(C2M_SYNC_KAFKA_SASL_USERNAME\)"):
        load_settings(environ=environ)
    environ = sasl_ssl_env(ca_file)
    del environ["C2M_SYNC_KAFKA_SASL_PASSWORD"]
    with pytest.raises(SettingsError, match="needs a SASL password "
                                            r"\(C2M_SYNC_KAFKA_SASL_PASSWORD or "):
        load_settings(environ=environ)


def test_unknown_mechanism_or_protocol_names_the_variable_and_the_choices(
        ca_file: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=sasl_ssl_env(ca_file, C2M_SYNC_KAFKA_SASL_MECHANISM="GSSAPI"))
    assert "environment variable C2M_SYNC_KAFKA_SASL_MECHANISM" in str(caught.value)
    assert "'SCRAM-SHA-512', 'SCRAM-SHA-256' or 'PLAIN' (got 'GSSAPI')" in str(caught.value)
    with pytest.raises(SettingsError, match=r"C2M_SYNC_KAFKA_SECURITY_PROTOCOL: .*'SASL_SSL'"):
        load_settings(environ={"C2M_SYNC_KAFKA_SECURITY_PROTOCOL": "TLS"})


def test_missing_ca_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "certs" / "kafka-ca.pem"
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"C2M_SYNC_KAFKA_SECURITY_PROTOCOL": "SSL",
                               "C2M_SYNC_KAFKA_SSL_CAFILE": str(missing)})
    assert "environment variable C2M_SYNC_KAFKA_SSL_CAFILE" in str(caught.value)
    assert f"file {str(missing)!r} does not exist" in str(caught.value)


def test_settings_that_the_protocol_would_ignore_are_errors(ca_file: Path) -> None:
    """Credentials or TLS files with a protocol that does not use them mean the protocol was
    forgotten: connecting in plaintext anyway would be the wrong guess."""
    with pytest.raises(SettingsError, match="SASL credentials are set but the security "
                                            "protocol is PLAINTEXT"):
        load_settings(environ={"C2M_SYNC_KAFKA_SASL_USERNAME": "c2m-sync",
                               "C2M_SYNC_KAFKA_SASL_PASSWORD": PASSWORD})
    with pytest.raises(SettingsError, match="ssl_cafile set but the security protocol is "
                                            "SASL_PLAINTEXT"):
        load_settings(environ=sasl_ssl_env(ca_file,
                                           C2M_SYNC_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT"))
    with pytest.raises(SettingsError, match="ssl_keyfile is set without ssl_certfile"):
        load_settings(environ=sasl_ssl_env(ca_file, C2M_SYNC_KAFKA_SSL_KEYFILE=str(ca_file)))


def test_password_is_in_no_repr_dump_or_description(ca_file: Path) -> None:
    settings = load_settings(environ=sasl_ssl_env(ca_file))
    shown = [repr(settings), str(settings), repr(settings.kafka_security),
             settings.model_dump_json(), json.dumps(settings.model_dump(mode="json")),
             settings.kafka_security.describe()]
    for text in shown:
        assert PASSWORD not in text
    assert settings.model_dump(mode="json")["kafka_security"]["sasl_password"] == "**********"
    assert settings.kafka_security.describe() == (
        f"SASL_SSL, SCRAM-SHA-512 as 'c2m-sync', CA {ca_file}")


# A marker no message contains, then anything: a found password can only be a leak.
PASSWORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                    min_size=1).map(lambda rest: "pw#" + rest.strip("\r\n") + "#")


@given(password=PASSWORDS)
def test_no_settings_error_quotes_the_password(password: str) -> None:
    """Whatever else is wrong, the error message never carries the password."""
    environ = {"C2M_SYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
               "C2M_SYNC_KAFKA_SASL_PASSWORD": password,
               "C2M_SYNC_KAFKA_SASL_MECHANISM": "NOPE"}
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=environ)
    with pytest.raises(SettingsError) as without_username:
        load_settings(environ={**environ, "C2M_SYNC_KAFKA_SASL_MECHANISM": "PLAIN"})
    for error in (caught.value, without_username.value):
        assert "C2M_SYNC_KAFKA_SASL_" in str(error)
        assert password not in str(error)


def test_direct_validation_errors_hide_the_input() -> None:
    with pytest.raises(ValidationError) as caught:
        KafkaSecurity(security_protocol="SASL_SSL", sasl_password=PASSWORD)  # type: ignore[arg-type]
    assert "needs a SASL username" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_config_show_prints_the_protocol_and_user_but_never_the_password(
        ca_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in sasl_ssl_env(ca_file).items():
        monkeypatch.setenv(name, value)
    assert main(["config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["settings"]["kafka_security"]
    assert shown["sasl_username"] == "c2m-sync"
    assert shown["sasl_password"] == "**********"
    assert main(["config", "show"]) == 0
    human = capsys.readouterr()
    assert "broker auth  : SASL_SSL, SCRAM-SHA-512 as 'c2m-sync'" in human.out
    assert PASSWORD not in human.out + human.err


def test_bad_security_setting_is_a_one_line_cli_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("C2M_SYNC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("C2M_SYNC_KAFKA_SASL_PASSWORD", PASSWORD)
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert "needs a SASL username (C2M_SYNC_KAFKA_SASL_USERNAME)" in err
    assert "Traceback" not in err
    assert PASSWORD not in err
