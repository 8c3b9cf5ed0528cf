"""The exported JSON Schema files: in step with the models, byte-stable, and describing what
the codec writes. ``c2m-sync schemas export`` writes them; ``--check`` finds drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from sync.cli import main
from sync.mapping.codec import encode
from sync.mapping.messages import (
    SCHEMA_FILES,
    AckError,
    Acknowledgement,
    AckOutcome,
    EntityType,
    SaSyncMessage,
    WireModel,
    schema_documents,
)
from tests.unit.mapping.builders import EVENT_TIME, person_message, relationship_message, sa_message
from tests.unit.mapping.schema_check import schema_problems
from tests.unit.mapping.strategies import sa_messages

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def test_committed_schema_files_match_the_models() -> None:
    """Fails when a model changed and `c2m-sync schemas export` was not run."""
    for name, text in schema_documents().items():
        committed = SCHEMAS_DIR / name
        assert committed.exists(), f"{committed} is missing: run `c2m-sync schemas export`"
        assert committed.read_text("utf-8") == text, (
            f"{committed} differs from the models: run `c2m-sync schemas export`")


def test_one_file_per_message_type_named_with_its_version() -> None:
    assert sorted(SCHEMA_FILES) == ["acknowledgement.v1.json", "person-sync.v1.json",
                                    "sa-relationship-sync.v1.json", "sa-sync.v1.json"]


def test_schema_text_is_byte_stable() -> None:
    first, second = schema_documents(), schema_documents()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True,
                                  ensure_ascii=False) + "\n"


def test_schemas_require_the_envelope_and_refuse_unknown_fields() -> None:
    sa = json.loads(schema_documents()["sa-sync.v1.json"])
    assert sa["additionalProperties"] is False
    assert {"schemaVersion", "entityType", "externalId", "version", "syncRequestId",
            "eventTime", "saStatus", "usType"} <= set(sa["required"])
    assert sa["properties"]["schemaVersion"]["const"] == 1
    assert sa["properties"]["entityType"]["const"] == "SA"
    assert sa["properties"]["saStatus"]["enum"] == ["10", "20", "30", "40", "50", "60", "70"]


ACK = Acknowledgement(
    sync_request_id="SR-1", entity_type=EntityType.SA, entity_id="SA-1", version=2,
    outcome=AckOutcome.ERROR, processed_at=EVENT_TIME,
    errors=(AckError(code="D2-VALUSMC", path="spLinks[0].spId", message="no kWh channel"),))


@pytest.mark.parametrize(("file_name", "message"), [
    ("sa-sync.v1.json", sa_message()),
    ("sa-sync.v1.json", sa_message(us_type=None, sp_ids=(), main_contact=None)),
    ("person-sync.v1.json", person_message()),
    ("sa-relationship-sync.v1.json", relationship_message(master_external_id=None)),
    ("acknowledgement.v1.json", ACK),
])
def test_encoded_messages_conform_to_the_exported_schema(file_name: str,
                                                         message: WireModel) -> None:
    schema = json.loads((SCHEMAS_DIR / file_name).read_text("utf-8"))
    assert schema_problems(json.loads(encode(message)), schema) == []


def test_the_schema_check_notices_a_nonconforming_document() -> None:
    """The conformance test above would catch a drifted encoding."""
    schema = json.loads((SCHEMAS_DIR / "sa-sync.v1.json").read_text("utf-8"))
    document: dict[str, Any] = json.loads(encode(sa_message()))
    document["spLinks"][0]["usageFlag"] = "?"
    document["extra"] = 1
    del document["syncRequestId"]
    assert len(schema_problems(document, schema)) == 3


# --- the command ---------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["schemas", "export", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_export_writes_every_file_then_check_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "out"
    code, shown = run(capsys, "--dir", str(target), "--check")
    assert code == 1
    assert set(shown["files"].values()) == {"missing"}
    assert not target.exists()  # --check writes nothing

    code, shown = run(capsys, "--dir", str(target))
    assert code == 0
    assert set(shown["files"].values()) == {"written"}
    for name, text in schema_documents().items():
        assert (target / name).read_text("utf-8") == text

    code, shown = run(capsys, "--dir", str(target), "--check")
    assert code == 0
    assert set(shown["files"].values()) == {"up to date"}


def test_check_reports_a_changed_file_and_export_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "--dir", str(tmp_path))[0] == 0
    stale = tmp_path / "sa-sync.v1.json"
    stale.write_text("{}\n", "utf-8")
    code, shown = run(capsys, "--dir", str(tmp_path), "--check")
    assert code == 1
    assert shown["files"]["sa-sync.v1.json"] == "differs"
    assert shown["files"]["person-sync.v1.json"] == "up to date"
    code, shown = run(capsys, "--dir", str(tmp_path))
    assert shown["files"] == {"sa-sync.v1.json": "written", "person-sync.v1.json": "up to date",
                              "sa-relationship-sync.v1.json": "up to date",
                              "acknowledgement.v1.json": "up to date"}
    assert stale.read_text("utf-8") == schema_documents()["sa-sync.v1.json"]


def test_human_output_names_each_file(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "export", "--dir", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'sa-sync.v1.json'}: missing" in out
    assert "run `c2m-sync schemas export`" in out


@given(sa_messages())
@settings(max_examples=50)
def test_any_encoded_sa_message_conforms_to_the_exported_schema(message: SaSyncMessage) -> None:
    schema = json.loads((SCHEMAS_DIR / "sa-sync.v1.json").read_text("utf-8"))
    assert schema_problems(json.loads(encode(message)), schema) == []
