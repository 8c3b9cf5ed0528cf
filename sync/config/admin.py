"""Admin data: everything the process lists under "entities to configure".

The file is YAML; every collection is a mapping keyed by its code, so an error path reads like
``sa_types.E-RES.us_type``. Loading validates the shape with pydantic, then cross-references
(an SA type naming a missing US type, an unknown algorithm code, ...) and reports every problem
found, each with the file, the key path and the reason.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sync.algorithms import CATALOGUE, Spot
from sync.text_files import UnreadableFileError, read_text_file

DEFAULT_ADMIN_RESOURCE = "default_admin.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PositiveDays = Annotated[int, Field(ge=0, le=3650)]


class FaCreation(StrEnum):
    AT_REQUEST = "at_request"
    BY_PENDING_MONITOR = "by_pending_monitor"


class InstallationOptions(_Strict):
    base_time_zone: str
    multi_time_zone: bool = False
    fa_creation: FaCreation = FaCreation.AT_REQUEST
    fa_lead_days: PositiveDays = 5
    near_read_window_days: PositiveDays = 3
    old_pending_threshold_days: PositiveDays = 30
    max_back_dated_stop_days: PositiveDays = 60
    landlord_min_reversion_days: PositiveDays = 1
    sync_ack_timeout_minutes: Annotated[int, Field(ge=1)] = 60
    # Rejections by checks that compare a US with other USs are re-queued this many times
    # before they become errors: the other entity's message may simply not have arrived yet.
    sync_retry_limit: Annotated[int, Field(ge=0)] = 3
    # Sync requests that are settled (SYNCHRONIZED, DISCARDED) are kept this many days after
    # they settled, then removed by SYNC-PURGE: the outbox's history would otherwise grow with
    # every change for ever (a request holds its whole snapshot).
    sync_history_days: Annotated[int, Field(ge=1, le=3650)] = 90

    def history_cutoff(self, business_date: dt.date) -> dt.datetime:
        """What ``SYNC-PURGE`` removes settled (or, on MDM's side, was published) before this:
        the start (UTC) of the business date less ``sync_history_days``. Each row is kept at
        least that many whole days, and a purge on a given business date removes the same
        rows whatever the time of day."""
        return dt.datetime.combine(business_date - dt.timedelta(days=self.sync_history_days),
                                   dt.time(), dt.UTC)

    @field_validator("base_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_time_zone(value)


class ServiceType(_Strict):
    description: str


class FaTypeProfile(_Strict):
    """Which FA type the fieldwork algorithm creates for each purpose."""

    start: str
    stop: str
    near_read: str | None = None


class SpType(_Strict):
    description: str
    service_type: str
    fa_types: FaTypeProfile | None = None


class StepKind(StrEnum):
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    READ = "read"
    TURN_ON = "turn_on"
    TURN_OFF = "turn_off"


class FaType(_Strict):
    description: str
    step_kind: StepKind


class SaType(_Strict):
    description: str
    service_type: str
    premise_based: bool
    fieldwork_required: bool = False
    landlord_reversion: bool = False
    auto_stop: bool = False
    deposit_class: str | None = None
    is_deposit: bool = False
    stop_algorithms: tuple[str, ...] = ()
    us_type: str | None = None


class AdjustmentType(_Strict):
    description: str
    # The fee adjustment type that this type refunds: the C2M-SAST-RF stop algorithm credits
    # what is left of such fees on a stopped SA with an adjustment of this type.
    refunds: str | None = None


class FtCancelReason(_Strict):
    description: str


class ToDoType(_Strict):
    description: str
    priority: Annotated[int, Field(ge=1, le=100)] = 50
    default_role: str


class ToDoRole(_Strict):
    description: str
    users: tuple[str, ...] = ()


class ContactClass(_Strict):
    description: str


class ContactType(_Strict):
    description: str
    contact_class: str
    letter_template: str | None = None


class UsageGroupPeriod(_Strict):
    group: str
    start: dt.date
    end: dt.date | None = None


class UsType(_Strict):
    description: str
    valid_sp_types: tuple[str, ...]
    usage_groups: tuple[UsageGroupPeriod, ...] = ()
    direct_channel_mc_classes: tuple[str, ...] = ()
    override_factors: tuple[str, ...] = ()
    max_sub_us: Annotated[int, Field(ge=0)] = 0
    validations: tuple[str, ...] = ()


class Algorithms(_Strict):
    """The algorithm each installation-wide plug-in point runs (None = switched off)."""

    fieldwork: str | None = "C2M-SASPFWCR"
    reversion: str | None = "C2M-LL-REV"
    immediate_stop: str | None = "C1-SAIS-ST"
    sa_cancel_todo: str | None = "C2M-SACA-CRT"
    adjustment_cancel_todo: str | None = "CMCA-CRDT"
    person_info: str = "C2MPERS-INFO"
    account_info: str = "C1-ACCT-INFO"
    sa_type_info: str = "C2M-SAT-INFO"
    us_info: str = "D2-USINFO"
    person_name_validation: str | None = "C2M-PERNMVAL"


class AdminConfig(_Strict):
    installation: InstallationOptions
    service_types: dict[str, ServiceType]
    fa_types: dict[str, FaType]
    sp_types: dict[str, SpType]
    sa_types: dict[str, SaType]
    todo_roles: dict[str, ToDoRole]
    todo_types: dict[str, ToDoType]
    contact_classes: dict[str, ContactClass]
    contact_types: dict[str, ContactType]
    us_types: dict[str, UsType]
    adjustment_types: dict[str, AdjustmentType] = Field(default_factory=dict)
    ft_cancel_reasons: dict[str, FtCancelReason] = Field(default_factory=dict)
    algorithms: Algorithms = Algorithms()
    # Which To Do type each process raises; values are keys of ``todo_types``.
    todo_for: dict[str, str] = Field(default_factory=dict)

    def todo_type_for(self, purpose: str) -> str:
        try:
            return self.todo_for[purpose]
        except KeyError:
            raise KeyError(f"no To Do type configured for {purpose!r} (todo_for)") from None


# Purposes that processes raise To Do entries for; each must be mapped in ``todo_for``.
TODO_PURPOSES = (
    "sa_activation",  # SAACT: pending start/stop cannot proceed
    "old_pending",  # TD-SSFTL
    "fa_near_read",  # FANRMRCO: no usable read pair
    "sync_error",  # MDM rejected a sync request
    "sync_timeout",  # SYNC-TIMEOUT
    "sa_canceled",  # C2M-SACA-CRT
    "adjustment_canceled",  # CMCA-CRDT
    "contact_reminder",  # TD-CCCB
)


class AdminConfigError(ValueError):
    """A broken admin configuration file; ``problems`` lists (key path, reason)."""

    def __init__(self, source: str, problems: Iterable[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}: {path or '<top>'}: {reason}" for path, reason in self.problems]
        super().__init__("invalid admin configuration\n" + "\n".join(lines))


def check_time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _cross_references(config: AdminConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []

    def must_exist(path: str, code: str | None, table: Mapping[str, Any], what: str) -> None:
        if code is not None and code not in table:
            problems.append((path, f"unknown {what} {code!r}"))

    def must_be_algorithm(path: str, code: str | None, spot: Spot) -> None:
        if code is not None and code not in CATALOGUE[spot]:
            known = ", ".join(sorted(CATALOGUE[spot]))
            problems.append((path, f"unknown algorithm code {code!r} for {spot} (known: {known})"))

    for code, sp_type in config.sp_types.items():
        must_exist(f"sp_types.{code}.service_type", sp_type.service_type,
                   config.service_types, "service type")
        if sp_type.fa_types is not None:
            for purpose in ("start", "stop", "near_read"):
                must_exist(f"sp_types.{code}.fa_types.{purpose}",
                           getattr(sp_type.fa_types, purpose), config.fa_types, "FA type")
    for code, sa_type in config.sa_types.items():
        base = f"sa_types.{code}"
        must_exist(f"{base}.service_type", sa_type.service_type, config.service_types,
                   "service type")
        must_exist(f"{base}.us_type", sa_type.us_type, config.us_types, "US type")
        for index, algorithm in enumerate(sa_type.stop_algorithms):
            must_be_algorithm(f"{base}.stop_algorithms[{index}]", algorithm, Spot.SA_STOP)
        problems.extend(_stop_algorithm_problems(config, code, sa_type))
        if sa_type.fieldwork_required:
            profiles = [sp.fa_types for sp in config.sp_types.values()
                        if sp.service_type == sa_type.service_type]
            if not any(profiles):
                problems.append((f"{base}.fieldwork_required",
                                 "fieldwork required but no SP type of service type "
                                 f"{sa_type.service_type!r} has an FA type profile"))
    for code, adjustment_type in config.adjustment_types.items():
        if adjustment_type.refunds == code:
            problems.append((f"adjustment_types.{code}.refunds", "cannot refund itself"))
        else:
            must_exist(f"adjustment_types.{code}.refunds", adjustment_type.refunds,
                       config.adjustment_types, "adjustment type")
    for code, todo_type in config.todo_types.items():
        must_exist(f"todo_types.{code}.default_role", todo_type.default_role,
                   config.todo_roles, "To Do role")
    for code, contact_type in config.contact_types.items():
        must_exist(f"contact_types.{code}.contact_class", contact_type.contact_class,
                   config.contact_classes, "contact class")
    for code, us_type in config.us_types.items():
        for index, sp_type_code in enumerate(us_type.valid_sp_types):
            must_exist(f"us_types.{code}.valid_sp_types[{index}]", sp_type_code,
                       config.sp_types, "SP type")
        for index, algorithm in enumerate(us_type.validations):
            must_be_algorithm(f"us_types.{code}.validations[{index}]", algorithm,
                              Spot.US_VALIDATION)
    for field_name in Algorithms.model_fields:
        must_be_algorithm(f"algorithms.{field_name}", getattr(config.algorithms, field_name),
                          Spot(field_name))
    for purpose in TODO_PURPOSES:
        if purpose not in config.todo_for:
            problems.append((f"todo_for.{purpose}", "missing To Do type for this process"))
    for purpose, todo_type_code in config.todo_for.items():
        if purpose not in TODO_PURPOSES:
            problems.append((f"todo_for.{purpose}", "unknown process"))
        must_exist(f"todo_for.{purpose}", todo_type_code, config.todo_types, "To Do type")
    return problems


def _stop_algorithm_problems(config: AdminConfig, code: str,
                             sa_type: SaType) -> list[tuple[str, str]]:
    """What an SA type's stop algorithms and deposit settings need from the rest of the data."""
    base = f"sa_types.{code}"
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, algorithm in enumerate(sa_type.stop_algorithms):
        path = f"{base}.stop_algorithms[{index}]"
        if algorithm in seen:
            problems.append((path, f"algorithm {algorithm!r} listed twice"))
        seen.add(algorithm)
        if algorithm == "C2M-SAST-RF" and not any(
                t.refunds for t in config.adjustment_types.values()):
            problems.append((path, "C2M-SAST-RF needs an adjustment type with 'refunds' "
                                   "(adjustment_types) to refund the fee with"))
    if sa_type.is_deposit and sa_type.deposit_class is None:
        problems.append((f"{base}.deposit_class", "a deposit SA type needs a deposit class"))
    return problems


def parse_admin_config(data: Any, source: str) -> AdminConfig:
    """Validate already-parsed YAML/JSON data; ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise AdminConfigError(source, [("", "the file must hold a mapping of sections")])
    try:
        config = AdminConfig.model_validate(data)
    except ValidationError as error:
        raise AdminConfigError(
            source,
            [(_key_path(item["loc"]), _reason(item)) for item in error.errors()],
        ) from None
    problems = _cross_references(config)
    if problems:
        raise AdminConfigError(source, problems)
    return config


def _reason(item: Any) -> str:
    kind = item["type"]
    if kind == "missing":
        return "missing key"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "value_error":  # our own validators already name the bad value
        return str(item["msg"]).removeprefix("Value error, ")
    return f"{item['msg']} (got {item['input']!r})"


def load_admin_config(path: Path | str | None = None) -> AdminConfig:
    """Load the admin configuration from ``path``, or the default shipped in the package."""
    if path is None:
        text = resources.files("sync.config").joinpath(DEFAULT_ADMIN_RESOURCE).read_text("utf-8")
        source = f"<package>/sync/config/{DEFAULT_ADMIN_RESOURCE}"
    else:
        file = Path(path)
        source = str(file)
        try:
            text = read_text_file(file)
        except UnreadableFileError as error:
            raise AdminConfigError(source, [("", f"cannot read file: {error.reason}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise AdminConfigError(source, [(where, f"YAML syntax error: {problem}")]) from None
    return parse_admin_config(data, source)
