"""Validation of a master data file (see :mod:`sync.ccb.loading` for the file format).

Every record is checked for its shape (the entity's pydantic model), duplicate ids, references
to the file or to the stored state (through the :class:`~sync.ccb.ports.CcbView`), dates, and
the SA/SP/service types of the admin data. Problems are collected, never raised one by one, so
that one run reports all of them with section, index, id and field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from sync.ccb.errors import InvalidCommand
from sync.ccb.finance_loading import FINANCE_SECTIONS, check_finance_references
from sync.ccb.info import check_person_name
from sync.ccb.model import (
    Account,
    Budget,
    CollectionProcess,
    FinancialTransaction,
    LandlordAgreement,
    MeterRead,
    Person,
    Premise,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
    SeveranceProcess,
)
from sync.ccb.ports import CcbView
from sync.config.admin import AdminConfig, check_time_zone

# Meter reads stay last: ``MasterData.counts`` lists the links of the SAs before them.
SECTIONS = ("persons", "accounts", "premises", "service_points", "landlord_agreements",
            "service_agreements", *FINANCE_SECTIONS, "meter_reads")

# Statuses whose SA must have an end date.
_ENDED = {SaStatus.PENDING_STOP, SaStatus.STOPPED, SaStatus.CLOSED, SaStatus.REACTIVATED}


@dataclass(frozen=True)
class Problem:
    section: str
    index: int | None
    record_id: str | None
    field: str
    reason: str

    def describe(self, source: str) -> str:
        record = self.section if self.index is None else f"{self.section}[{self.index}]"
        if self.record_id is not None:
            record += f" ({self.record_id})"
        return f"{source}: {record}: {self.field or '<record>'}: {self.reason}"



@dataclass
class MasterData:
    """The validated content of one load file."""

    persons: list[Person] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    premises: list[Premise] = field(default_factory=list)
    service_points: list[ServicePoint] = field(default_factory=list)
    landlord_agreements: list[LandlordAgreement] = field(default_factory=list)
    service_agreements: list[ServiceAgreement] = field(default_factory=list)
    links: list[SaSpLink] = field(default_factory=list)
    meter_reads: list[MeterRead] = field(default_factory=list)
    financial_transactions: list[FinancialTransaction] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    collection_processes: list[CollectionProcess] = field(default_factory=list)
    severance_processes: list[SeveranceProcess] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in (*SECTIONS[:-1], "links",
                                                             "meter_reads")}



M = TypeVar("M", bound=BaseModel)


class _Checker:
    """Validates one file against the admin data and what the database already holds."""

    def __init__(self, admin: AdminConfig, view: CcbView) -> None:
        self.admin = admin
        self.view = view
        self.problems: list[Problem] = []
        self.data = MasterData()
        self._file: dict[str, dict[str, Any]] = {name: {} for name in (*SECTIONS, "links")}
        # Ids of records already reported as malformed: references to them are not reported
        # again as unknown.
        self._invalid: dict[str, set[str]] = {name: set() for name in SECTIONS}
        self.links_by_sa: dict[str, list[SaSpLink]] = {}
        self._positions: dict[tuple[str, str], int] = {}

    # --- shape ----------------------------------------------------------------------------

    def records(self, data: dict[str, Any], section: str) -> Iterable[tuple[int, dict[str, Any]]]:
        raw = data.get(section, [])
        if raw is None:
            return
        if not isinstance(raw, list):
            self.problem(section, None, None, "", "must be a list of records")
            return
        for index, record in enumerate(raw):
            if not isinstance(record, dict):
                self.problem(section, index, None, "", "must be a mapping of fields")
                continue
            yield index, record

    def model(self, section: str, index: int, record: dict[str, Any], model: type[M]) -> M | None:
        record_id = _record_id(record)
        if "version" in record:
            self.problem(section, index, record_id, "version",
                         "versions are kept by the store; remove the key")
            record = {key: value for key, value in record.items() if key != "version"}
        try:
            entity = model.model_validate(record)
        except ValidationError as error:
            for item in error.errors():
                self.problem(section, index, record_id, _key_path(item["loc"]), _reason(item))
            if record_id is not None:
                self._invalid[section].add(record_id)
            return None
        entity_id = str(getattr(entity, "id"))  # noqa: B009 - every entity has an id
        if entity_id in self._file[section]:
            self.problem(section, index, entity_id, "id", "duplicate id in this file")
            return None
        self._file[section][entity_id] = entity
        self._positions[(section, entity_id)] = index
        return entity

    def position(self, section: str, entity_id: str) -> int:
        """The index of the record in its section of the file."""
        return self._positions[(section, entity_id)]

    def problem(self, section: str, index: int | None, record_id: str | None, field_name: str,
                reason: str) -> None:
        self.problems.append(Problem(section, index, record_id, field_name, reason))

    # --- references -----------------------------------------------------------------------

    def find(self, section: str, entity_id: str) -> Any:
        if entity_id in self._file[section]:
            return self._file[section][entity_id]
        lookups: dict[str, Callable[[str], Any]] = {
            "persons": self.view.person, "accounts": self.view.account,
            "premises": self.view.premise, "service_points": self.view.service_point,
            "landlord_agreements": self.view.landlord_agreement,
            "service_agreements": self.view.sa,
        }
        return lookups[section](entity_id)

    def refer(self, where: tuple[str, int, str], field_name: str, target: str,
              entity_id: str | None, what: str) -> Any:
        if entity_id is None:
            return None
        found = self.find(target, entity_id)
        if found is None and entity_id not in self._invalid[target]:
            self.problem(*where, field_name,
                         f"unknown {what} {entity_id!r} (not in this file nor in the database)")
        return found

    def time_zone(self, where: tuple[str, int, str], zone: str | None) -> None:
        if zone is not None:
            try:
                check_time_zone(zone)
            except ValueError as error:
                self.problem(*where, "time_zone", str(error))


def _record_id(record: dict[str, Any]) -> str | None:
    value = record.get("id")
    return str(value) if value is not None else None


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _reason(item: Any) -> str:
    if item["type"] == "missing":
        return "missing field"
    if item["type"] == "extra_forbidden":
        return "unknown field"
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{message} (got {item['input']!r})" if "input" in item else message


_STATUS_NAMES = {status.name.lower(): status.value for status in SaStatus}


def _sa_record(record: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The SA fields and the raw ``links`` entry; a status may be given by code or name."""
    fields = {key: value for key, value in record.items() if key != "links"}
    status = fields.get("status")
    if isinstance(status, str):
        fields["status"] = _STATUS_NAMES.get(status.strip().lower().replace(" ", "_"), status)
    elif isinstance(status, int):
        fields["status"] = str(status)
    return fields, record.get("links", [])



def check_master_data(data: dict[str, Any], admin: AdminConfig,
                      view: CcbView) -> tuple[MasterData, list[Problem]]:
    """The valid records of ``data`` and every problem found in it."""
    checker = _Checker(admin, view)
    for section in data:
        if section not in SECTIONS:
            checker.problem(str(section), None, None, "",
                            f"unknown section (known: {', '.join(SECTIONS)})")
    _shape(checker, data, admin)
    _check_references(checker, admin)
    return checker.data, checker.problems


def _shape(checker: _Checker, data: dict[str, Any], admin: AdminConfig) -> None:
    models: dict[str, type[BaseModel]] = {
        "persons": Person, "accounts": Account, "premises": Premise,
        "service_points": ServicePoint, "landlord_agreements": LandlordAgreement,
        "meter_reads": MeterRead, "financial_transactions": FinancialTransaction,
        "budgets": Budget, "collection_processes": CollectionProcess,
        "severance_processes": SeveranceProcess,
    }
    base_zone = ZoneInfo(admin.installation.base_time_zone)
    for section, model in models.items():
        for index, record in checker.records(data, section):
            entity = checker.model(section, index, record, model)
            if isinstance(entity, MeterRead) and entity.read_at.tzinfo is None:
                # A read without an offset was taken in the installation's base time zone.
                entity = entity.model_copy(update={"read_at":
                                                   entity.read_at.replace(tzinfo=base_zone)})
            if entity is not None:
                getattr(checker.data, section).append(entity)
    for index, record in checker.records(data, "service_agreements"):
        fields, raw_links = _sa_record(record)
        sa = checker.model("service_agreements", index, fields, ServiceAgreement)
        if sa is None:
            continue
        checker.data.service_agreements.append(sa)
        _sa_links(checker, index, sa, raw_links)


def _sa_links(checker: _Checker, index: int, sa: ServiceAgreement, raw_links: Any) -> None:
    where = ("service_agreements", index, sa.id)
    if not isinstance(raw_links, list):
        checker.problem(*where, "links", "must be a list of SP ids or link records")
        return
    for position, raw in enumerate(raw_links):
        record: dict[str, Any] = {"sp_id": raw} if isinstance(raw, str) else raw
        if not isinstance(record, dict):
            checker.problem(*where, f"links[{position}]", "must be an SP id or a link record")
            continue
        sp_id = str(record.get("sp_id", ""))
        record = {"id": f"{sa.id}/{sp_id}", "start_date": sa.start_date,
                  "stop_date": sa.end_date, **record, "sa_id": sa.id}
        try:
            link = SaSpLink.model_validate(record)
        except ValidationError as error:
            for item in error.errors():
                checker.problem(*where, f"links[{position}].{_key_path(item['loc'])}",
                                _reason(item))
            continue
        if link.id in checker._file["links"]:
            checker.problem(*where, f"links[{position}].id", f"duplicate link id {link.id!r}")
            continue
        checker._file["links"][link.id] = link
        checker.data.links.append(link)
        checker.links_by_sa.setdefault(sa.id, []).append(link)


def _check_references(checker: _Checker, admin: AdminConfig) -> None:
    data = checker.data
    for person in data.persons:
        index = checker.position("persons", person.id)
        try:
            check_person_name(admin, person.id, person.name, person.is_business)
        except InvalidCommand as error:
            checker.problem("persons", index, person.id, "name", error.reason)
    for account in data.accounts:
        where = ("accounts", checker.position("accounts", account.id), account.id)
        checker.refer(where, "main_person_id", "persons", account.main_person_id, "person")
        for position, person_id in enumerate(account.other_person_ids):
            checker.refer(where, f"other_person_ids[{position}]", "persons", person_id, "person")
        checker.refer(where, "mailing_premise_id", "premises", account.mailing_premise_id,
                      "premise")
    for premise in data.premises:
        _check_premise(checker, checker.position("premises", premise.id), premise)
    for sp in data.service_points:
        where = ("service_points", checker.position("service_points", sp.id), sp.id)
        checker.refer(where, "premise_id", "premises", sp.premise_id, "premise")
        if sp.sp_type not in admin.sp_types:
            checker.problem(*where, "sp_type", f"unknown SP type {sp.sp_type!r} "
                                               f"(admin data: {', '.join(admin.sp_types)})")
        checker.time_zone(where, sp.time_zone)
        seen: set[str] = set()
        for position, component in enumerate(sp.measuring_components):
            if component.id in seen:
                checker.problem(*where, f"measuring_components[{position}].id",
                                f"duplicate measuring component id {component.id!r}")
            seen.add(component.id)
    for agreement in data.landlord_agreements:
        _check_landlord_agreement(
            checker, checker.position("landlord_agreements", agreement.id), agreement)
    for sa in data.service_agreements:
        _check_sa(checker, checker.position("service_agreements", sa.id), sa)
    for read in data.meter_reads:
        checker.refer(("meter_reads", checker.position("meter_reads", read.id), read.id),
                      "sp_id", "service_points", read.sp_id, "service point")
    check_finance_references(checker)


def _check_premise(checker: _Checker, index: int, premise: Premise) -> None:
    where = ("premises", index, premise.id)
    checker.refer(where, "landlord_agreement_id", "landlord_agreements",
                  premise.landlord_agreement_id, "landlord agreement")
    checker.time_zone(where, premise.time_zone)
    parent_id = premise.parent_premise_id
    if checker.refer(where, "parent_premise_id", "premises", parent_id, "premise") is None:
        return
    seen = {premise.id}
    while parent_id is not None:
        if parent_id in seen:
            checker.problem(*where, "parent_premise_id",
                            f"premise {parent_id!r} would be its own ancestor")
            return
        seen.add(parent_id)
        parent = checker.find("premises", parent_id)
        parent_id = parent.parent_premise_id if parent is not None else None


def _check_landlord_agreement(checker: _Checker, index: int, agreement: LandlordAgreement) -> None:
    where = ("landlord_agreements", index, agreement.id)
    checker.refer(where, "landlord_person_id", "persons", agreement.landlord_person_id, "person")
    checker.refer(where, "landlord_account_id", "accounts", agreement.landlord_account_id,
                  "account")
    seen: set[str] = set()
    for position, preference in enumerate(agreement.preferences):
        path = f"preferences[{position}]"
        if preference.service_type not in checker.admin.service_types:
            checker.problem(*where, f"{path}.service_type",
                            f"unknown service type {preference.service_type!r}")
        if preference.service_type in seen:
            checker.problem(*where, f"{path}.service_type",
                            f"second preference for service type {preference.service_type!r}")
        seen.add(preference.service_type)
        window = (preference.season_start, preference.season_end)
        if preference.seasonal and None in window:
            checker.problem(*where, path, "a seasonal preference needs season_start and "
                                          "season_end (MMDD)")
        if not preference.seasonal and window != (None, None):
            checker.problem(*where, path, "season_start/season_end given but seasonal is false")


def _check_sa(checker: _Checker, index: int, sa: ServiceAgreement) -> None:
    where = ("service_agreements", index, sa.id)
    checker.refer(where, "account_id", "accounts", sa.account_id, "account")
    sa_type = checker.admin.sa_types.get(sa.sa_type)
    if sa_type is None:
        checker.problem(*where, "sa_type", f"unknown SA type {sa.sa_type!r} "
                                           f"(admin data: {', '.join(checker.admin.sa_types)})")
    elif sa_type.premise_based and sa.premise_id is None:
        checker.problem(*where, "premise_id", f"SA type {sa.sa_type!r} is premise based: "
                                              "a premise is required")
    checker.refer(where, "premise_id", "premises", sa.premise_id, "premise")
    if sa.master_sa_id == sa.id:
        checker.problem(*where, "master_sa_id", "an SA cannot be its own master")
    else:
        checker.refer(where, "master_sa_id", "service_agreements", sa.master_sa_id, "SA")
    for field_name, by in (("created_by", sa.created_by), ("stopped_by", sa.stopped_by)):
        if by is not None:
            checker.refer(where, f"{field_name}.reciprocal_sa_id", "service_agreements",
                          by.reciprocal_sa_id, "SA")
    if sa.end_date is not None and sa.end_date < sa.start_date:
        checker.problem(*where, "end_date", f"{sa.end_date} is before the start date "
                                            f"{sa.start_date}")
    if sa.status in _ENDED and sa.end_date is None:
        checker.problem(*where, "end_date", f"status {sa.status.value} ({sa.status.label}) "
                                            "needs an end date")
    for position, link in enumerate(checker.links_by_sa.get(sa.id, [])):
        _check_link(checker, where, position, sa, link)


def _check_link(checker: _Checker, where: tuple[str, int, str], position: int,
                sa: ServiceAgreement, link: SaSpLink) -> None:
    path = f"links[{position}]"
    sp = checker.refer(where, f"{path}.sp_id", "service_points", link.sp_id, "service point")
    # A stop date taken over from the SA's end date is reported once, against the SA.
    if link.stop_date is not None and link.stop_date < link.start_date \
            and (link.stop_date, link.start_date) != (sa.end_date, sa.start_date):
        checker.problem(*where, f"{path}.stop_date", f"{link.stop_date} is before the start "
                                                     f"date {link.start_date}")
    if not isinstance(sp, ServicePoint):
        return
    sa_type = checker.admin.sa_types.get(sa.sa_type)
    sp_type = checker.admin.sp_types.get(sp.sp_type)
    if sa_type is not None and sp_type is not None \
            and sa_type.service_type != sp_type.service_type:
        checker.problem(*where, f"{path}.sp_id",
                        f"SP {sp.id!r} is of service type {sp_type.service_type!r}, the SA "
                        f"type {sa.sa_type!r} of {sa_type.service_type!r}")
    if sa.premise_id is not None and sp.premise_id != sa.premise_id:
        checker.problem(*where, f"{path}.sp_id",
                        f"SP {sp.id!r} is at premise {sp.premise_id!r}, the SA at "
                        f"{sa.premise_id!r}")
