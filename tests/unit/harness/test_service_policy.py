"""Harness policy: a missing broker or database fails under CI and skips elsewhere; the Kafka
jar cache is reused without Maven."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.devtools import kafka as launcher
from tests import conftest


def test_missing_service_fails_the_run_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="Kafka unavailable: no java"):
        conftest.unavailable("Kafka", "no java")


def test_missing_service_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL unavailable"):
        conftest.unavailable("PostgreSQL", "no initdb")


def test_resolved_jars_are_reused_without_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    libs = tmp_path / "kafka" / f"{launcher.SCALA_VERSION}-{launcher.KAFKA_VERSION}" / "libs"
    libs.mkdir(parents=True)
    (libs / ".resolved").write_text(launcher.KAFKA_VERSION)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no mvn reachable
    assert launcher.resolve_broker_jars(tmp_path) == libs


def test_resolution_without_maven_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(launcher.KafkaLauncherError, match="Maven \\('mvn'\\) is needed"):
        launcher.resolve_broker_jars(tmp_path)


def test_cluster_ids_have_kafkas_text_form() -> None:
    ids = {launcher._cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(value) == 22 and "=" not in value for value in ids)
