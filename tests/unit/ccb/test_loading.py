"""Master data files: validation reports every problem with file, record and field; loading is
an upsert by id that changes nothing when the file is bad."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.loading import (
    MasterDataError,
    load_master_data,
    parse_text,
    validate_master_data,
)
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import SaStatus
from sync.config.admin import AdminConfig, load_admin_config

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "premise-landlord.yaml"
NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def admin() -> AdminConfig:
    return load_admin_config()


@pytest.fixture
def sample() -> dict[str, Any]:
    data = parse_text(SAMPLE.read_text("utf-8"), str(SAMPLE))
    assert isinstance(data, dict)
    return data


def problems_of(data: Any, admin: AdminConfig, view: InMemoryCcb | None = None) -> list[str]:
    with pytest.raises(MasterDataError) as raised:
        validate_master_data(data, "f.yaml", admin, view or InMemoryCcb())
    return [problem.describe("f.yaml") for problem in raised.value.problems]


def test_the_sample_file_describes_the_landlord_tenant_building(
        sample: dict[str, Any], admin: AdminConfig) -> None:
    data = validate_master_data(sample, "sample", admin, InMemoryCcb())
    assert data.counts() == {"persons": 4, "accounts": 4, "premises": 4, "service_points": 6,
                             "landlord_agreements": 1, "service_agreements": 6, "links": 6,
                             "meter_reads": 4, "financial_transactions": 0, "budgets": 0,
                             "collection_processes": 0, "severance_processes": 0}
    units = [p for p in data.premises if p.parent_premise_id == "PR-4410"]
    assert len(units) == 3
    agreement = data.landlord_agreements[0]
    assert [(p.service_type, p.seasonal) for p in agreement.preferences] == [("E", False),
                                                                           ("G", True)]
    tenants = {sa.account_id for sa in data.service_agreements if sa.account_id != "A-LL-01"}
    assert tenants == {"A-TN-01", "A-TN-02"}
    assert all(sa.status is SaStatus.ACTIVE for sa in data.service_agreements)
    # A read given without an offset was taken in the installation's base time zone.
    assert data.meter_reads[0].read_at.utcoffset() == dt.timedelta(hours=-6)


def test_loading_is_one_unit_that_upserts_by_id(sample: dict[str, Any],
                                                admin: AdminConfig) -> None:
    store = InMemoryCcb()
    first = store.execute(load_master_data(sample, "sample", admin, NOW, "csr1"))
    assert ("PERSON", "P-TN-01") in first.changed
    assert ("SA", "SA-TN01-E") in first.changed
    sa = store.sa("SA-TN01-E")
    assert sa is not None
    assert (sa.version, [entry.action for entry in sa.audit]) == (1, ["load"])
    assert [link.sp_id for link in store.links_of_sa("SA-TN01-E")] == ["SP-4410-1E"]

    sample["persons"][1]["email"] = "chidi@example.org"
    store.execute(load_master_data(sample, "sample", admin, NOW, "csr1"))
    person = store.person("P-TN-01")
    assert person is not None
    assert (person.version, person.email) == (2, "chidi@example.org")
    reloaded = store.sa("SA-TN01-E")
    assert reloaded is not None
    assert reloaded.version == 2
    assert [entry.from_status for entry in reloaded.audit] == [None, SaStatus.ACTIVE]


def test_a_record_may_refer_to_what_the_database_already_holds(
        sample: dict[str, Any], admin: AdminConfig) -> None:
    store = InMemoryCcb()
    store.execute(load_master_data(sample, "sample", admin, NOW, "csr1"))
    later = {"service_agreements": [{
        "id": "SA-TN03-E", "account_id": "A-TN-03", "sa_type": "E-RES",
        "status": "pending start", "start_date": "2025-04-01", "premise_id": "PR-4410-3",
        "links": ["SP-4410-3E"]}]}
    changes = store.execute(load_master_data(later, "later", admin, NOW, "csr1"))
    assert changes.sas["SA-TN03-E"].status is SaStatus.PENDING_START
    assert changes.links["SA-TN03-E/SP-4410-3E"].start_date == dt.date(2025, 4, 1)


def test_every_problem_is_reported_with_record_and_field(sample: dict[str, Any],
                                                        admin: AdminConfig) -> None:
    bad = copy.deepcopy(sample)
    bad["persons"].append(copy.deepcopy(bad["persons"][0]))  # duplicate id
    bad["persons"][1]["name"] = "Chidi Okafor"
    bad["accounts"][1]["main_person_id"] = "P-NOBODY"
    bad["service_points"][0]["sp_type"] = "E-XX"
    bad["service_agreements"][0]["start_date"] = "2023-02-30"
    bad["service_agreements"][1]["sa_type"] = "G-XX"
    bad["service_agreements"][2]["end_date"] = "2024-01-01"
    bad["service_agreements"][3]["links"] = [{"sp_id": "SP-4410-2E"}]
    bad["landlord_agreements"][0]["preferences"][1]["season_start"] = "1301"
    bad["meter_reads"][0]["version"] = 3
    problems = problems_of(bad, admin)
    expected = [
        "f.yaml: persons[4] (P-LL-01): id: duplicate id in this file",
        "f.yaml: persons[1] (P-TN-01): name: 'Chidi Okafor' is invalid (C2M-PERNMVAL): a "
        "person's name must be LAST,FIRST with exactly one comma (got 0)",
        "f.yaml: accounts[1] (A-TN-01): main_person_id: unknown person 'P-NOBODY' (not in "
        "this file nor in the database)",
        "f.yaml: service_points[0] (SP-4410-1E): sp_type: unknown SP type 'E-XX' (admin "
        "data: E-RES, G-RES, W-RES)",
        "f.yaml: service_agreements[0] (SA-TN01-E): start_date:",
        "f.yaml: service_agreements[1] (SA-TN01-G): sa_type: unknown SA type 'G-XX'",
        "f.yaml: service_agreements[2] (SA-TN02-E): end_date: 2024-01-01 is before the start "
        "date 2024-09-01",
        "f.yaml: service_agreements[3] (SA-TN02-G): links[0].sp_id: SP 'SP-4410-2E' is of "
        "service type 'E', the SA type 'G-RES' of 'G'",
        "f.yaml: landlord_agreements[0] (LA-4410): preferences[1].season_start: String "
        "should match pattern",
        "f.yaml: meter_reads[0] (RD-1E-202501): version: versions are kept by the store",
    ]
    for line in expected:
        assert any(problem.startswith(line) for problem in problems), (line, problems)
    assert len(problems) == len(expected)


def test_references_to_a_malformed_record_are_not_reported_twice(
        sample: dict[str, Any], admin: AdminConfig) -> None:
    sample["persons"][1]["phones"] = "not a list"
    problems = problems_of(sample, admin)
    assert problems == ["f.yaml: persons[1] (P-TN-01): phones: Input should be a valid tuple "
                        "(got 'not a list')"]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["premises"][0].update(parent_premise_id="PR-4410-1"),
     "premises[1] (PR-4410-1): parent_premise_id: premise 'PR-4410-1' would be its own "
     "ancestor"),
    (lambda d: d["service_agreements"][0].update(premise_id=None),
     "service_agreements[0] (SA-TN01-E): premise_id: SA type 'E-RES' is premise based"),
    (lambda d: d["service_agreements"][0].update(status="pending stop"),
     "service_agreements[0] (SA-TN01-E): end_date: status 30 (pending stop) needs an end date"),
    (lambda d: d["service_agreements"][0].update(links=["SP-4410-2E"]),
     "service_agreements[0] (SA-TN01-E): links[0].sp_id: SP 'SP-4410-2E' is at premise "
     "'PR-4410-2', the SA at 'PR-4410-1'"),
    (lambda d: d["landlord_agreements"][0]["preferences"].append({"service_type": "E"}),
     "landlord_agreements[0] (LA-4410): preferences[2].service_type: second preference for "
     "service type 'E'"),
    (lambda d: d["landlord_agreements"][0]["preferences"][1].update(season_end=None),
     "landlord_agreements[0] (LA-4410): preferences[1]: a seasonal preference needs "
     "season_start and season_end"),
    (lambda d: d["premises"][0].update(time_zone="Mars/Olympus"),
     "premises[0] (PR-4410): time_zone: unknown IANA time zone 'Mars/Olympus'"),
    (lambda d: d.update(tenants=[]), "tenants: <record>: unknown section"),
    (lambda d: d.update(persons={"id": "P-1"}), "persons: <record>: must be a list of records"),
    (lambda d: d["service_agreements"][0].update(master_sa_id="SA-TN01-E"),
     "service_agreements[0] (SA-TN01-E): master_sa_id: an SA cannot be its own master"),
])
def test_each_rule_names_the_record_and_field(sample: dict[str, Any], admin: AdminConfig,
                                              change: Any, expected: str) -> None:
    change(sample)
    problems = problems_of(sample, admin)
    assert any(problem.startswith(f"f.yaml: {expected}") for problem in problems), problems


def test_a_bad_file_changes_nothing(sample: dict[str, Any], admin: AdminConfig) -> None:
    store = InMemoryCcb()
    sample["accounts"][0]["main_person_id"] = "P-NOBODY"
    with pytest.raises(MasterDataError):
        store.execute(load_master_data(sample, "sample", admin, NOW, "csr1"))
    assert store.state() == InMemoryCcb().state()
    assert store.entity_changes == []


def test_a_load_racing_a_command_on_the_same_sa_is_refused(sample: dict[str, Any],
                                                          admin: AdminConfig) -> None:
    store = InMemoryCcb()
    store.execute(load_master_data(sample, "sample", admin, NOW, "csr1"))
    unit = load_master_data(sample, "sample", admin, NOW, "csr1")

    def interleaved(view: Any, ids: Any) -> Any:
        changes = unit(view, ids)
        store.execute(load_master_data(sample, "sample", admin, NOW, "csr2"))
        return changes

    with pytest.raises(ConcurrentUpdateError):
        store.execute(interleaved)


@pytest.mark.parametrize(("source", "text", "expected"), [
    ("f.yaml", "persons: [\n  {id: P-1,\n", "f.yaml: line 3, column 1: <record>: YAML syntax"),
    ("f.json", '{"persons": [}', "f.json: line 1, column 14: <record>: JSON syntax error"),
])
def test_a_syntax_error_names_the_line(source: str, text: str, expected: str) -> None:
    with pytest.raises(MasterDataError) as raised:
        parse_text(text, source)
    assert str(raised.value).splitlines()[1].startswith(expected)


def test_a_file_that_is_not_a_mapping_is_refused(admin: AdminConfig) -> None:
    assert problems_of(["persons"], admin) == ["f.yaml: file: <record>: must hold a mapping "
                                               "of sections"]
