"""Admin data: the shipped default is complete, and broken files say file, key path and reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sync.algorithms import CATALOGUE, Spot
from sync.config.admin import (
    TODO_PURPOSES,
    AdminConfigError,
    FaCreation,
    load_admin_config,
    parse_admin_config,
)


def default_data() -> dict[str, Any]:
    path = Path(__file__).parents[3] / "sync" / "config" / "default_admin.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text("utf-8"))
    return data


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "admin.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    return path


def test_shipped_default_is_complete_and_realistic() -> None:
    admin = load_admin_config()
    assert set(admin.service_types) == {"E", "G", "W"}
    assert admin.installation.fa_creation is FaCreation.AT_REQUEST
    residential = {code: t for code, t in admin.sa_types.items() if t.premise_based}
    assert set(residential) == {"E-RES", "G-RES", "W-RES"}
    assert all(t.landlord_reversion for t in residential.values())
    assert admin.sa_types["E-RES"].fieldwork_required
    assert admin.sa_types["G-RES"].fieldwork_required
    assert not admin.sa_types["W-RES"].fieldwork_required
    # Every premise-based SA type maps to a US type whose valid SP types cover its service.
    for sa_type in residential.values():
        assert sa_type.us_type is not None
        us_type = admin.us_types[sa_type.us_type]
        assert any(admin.sp_types[sp].service_type == sa_type.service_type
                   for sp in us_type.valid_sp_types)
        assert set(us_type.validations) == set(CATALOGUE[Spot.US_VALIDATION])
    assert set(admin.todo_for) == set(TODO_PURPOSES)


def test_missing_key_names_file_path_and_reason(tmp_path: Path) -> None:
    data = default_data()
    del data["sa_types"]["G-RES"]["premise_based"]
    path = write(tmp_path, data)
    with pytest.raises(AdminConfigError) as caught:
        load_admin_config(path)
    assert f"{path}: sa_types.G-RES.premise_based: missing key" in str(caught.value)
    assert caught.value.problems == [("sa_types.G-RES.premise_based", "missing key")]


def test_wrong_type_names_the_key_and_the_value(tmp_path: Path) -> None:
    data = default_data()
    data["installation"]["fa_lead_days"] = "five"
    path = write(tmp_path, data)
    with pytest.raises(AdminConfigError) as caught:
        load_admin_config(path)
    message = str(caught.value)
    assert f"{path}: installation.fa_lead_days:" in message
    assert "valid integer" in message
    assert "'five'" in message


def test_unknown_algorithm_code_is_rejected_with_the_known_codes(tmp_path: Path) -> None:
    data = default_data()
    data["sa_types"]["E-RES"]["stop_algorithms"] = ["NB-SAST", "XX-NOPE"]
    data["us_types"]["G-RES-US"]["validations"].append("D2-MADEUP")
    path = write(tmp_path, data)
    with pytest.raises(AdminConfigError) as caught:
        load_admin_config(path)
    problems = dict(caught.value.problems)
    assert problems["sa_types.E-RES.stop_algorithms[1]"].startswith(
        "unknown algorithm code 'XX-NOPE' for sa_stop"
    )
    assert "C2M-SAST-RF" in problems["sa_types.E-RES.stop_algorithms[1]"]
    assert problems["us_types.G-RES-US.validations[8]"].startswith(
        "unknown algorithm code 'D2-MADEUP' for us_validation"
    )


def test_unknown_installation_algorithm_is_rejected(tmp_path: Path) -> None:
    data = default_data()
    data["algorithms"]["reversion"] = "LL-REV-2"
    with pytest.raises(AdminConfigError) as caught:
        parse_admin_config(data, "inline")
    assert caught.value.problems[0][0] == "algorithms.reversion"
    assert "unknown algorithm code 'LL-REV-2'" in caught.value.problems[0][1]


def test_dangling_references_are_all_reported_together() -> None:
    data = default_data()
    data["sa_types"]["E-RES"]["us_type"] = "NO-SUCH-US"
    data["sp_types"]["W-RES"]["service_type"] = "S"
    data["todo_types"]["TD-SAACT"]["default_role"] = "NOBODY"
    with pytest.raises(AdminConfigError) as caught:
        parse_admin_config(data, "inline")
    assert dict(caught.value.problems) == {
        "sp_types.W-RES.service_type": "unknown service type 'S'",
        "sa_types.E-RES.us_type": "unknown US type 'NO-SUCH-US'",
        "todo_types.TD-SAACT.default_role": "unknown To Do role 'NOBODY'",
    }


def test_bad_time_zone_and_unknown_key(tmp_path: Path) -> None:
    data = default_data()
    data["installation"]["base_time_zone"] = "Mars/Olympus"
    data["installation"]["colour"] = "blue"
    with pytest.raises(AdminConfigError) as caught:
        parse_admin_config(data, "inline")
    problems = dict(caught.value.problems)
    assert problems["installation.base_time_zone"] == "unknown IANA time zone 'Mars/Olympus'"
    assert problems["installation.colour"] == "unknown key"


def test_fieldwork_without_fa_profile_is_inconsistent() -> None:
    data = default_data()
    data["sa_types"]["W-RES"]["fieldwork_required"] = True
    with pytest.raises(AdminConfigError) as caught:
        parse_admin_config(data, "inline")
    path, reason = caught.value.problems[0]
    assert path == "sa_types.W-RES.fieldwork_required"
    assert "'W'" in reason


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "admin.yaml"
    path.write_text("installation:\n  base_time_zone: [unclosed\nservice_types: {}\n", "utf-8")
    with pytest.raises(AdminConfigError) as caught:
        load_admin_config(path)
    assert str(path) in str(caught.value)
    where, reason = caught.value.problems[0]
    assert where.startswith("line ")
    assert reason.startswith("YAML syntax error")


def test_missing_file_and_non_mapping_top_level(tmp_path: Path) -> None:
    with pytest.raises(AdminConfigError, match="cannot read file"):
        load_admin_config(tmp_path / "absent.yaml")
    with pytest.raises(AdminConfigError, match="must hold a mapping"):
        load_admin_config(write(tmp_path, ["a", "list"]))
