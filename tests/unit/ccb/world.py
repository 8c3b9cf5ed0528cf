"""A small CCB world for the lifecycle tests: one premise under a landlord agreement with an
electric (fieldwork), a gas (fieldwork) and a water (no fieldwork) service point; a tenant with
active electric and water service, a new tenant and the landlord."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sync.ccb.changes import Changes
from sync.ccb.commands import Command, CompleteFieldActivity
from sync.ccb.dispatch import unit_of_work
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import (
    Account,
    Address,
    FaPurpose,
    FaStatus,
    FieldActivity,
    LandlordAgreement,
    MeasuringComponent,
    Person,
    Premise,
    SaSpLink,
    SaStatus,
    SeasonalPreference,
    ServiceAgreement,
    ServicePoint,
)
from sync.config.admin import AdminConfig, load_admin_config

ADMIN = load_admin_config()
TODAY = dt.date(2025, 3, 3)
SINCE = dt.date(2024, 1, 1)
TENANT, NEW_TENANT, LANDLORD = "A-T", "A-N", "A-L"
PREMISE = "PR-1"
SP_E, SP_G, SP_W = "SP-E", "SP-G", "SP-W"
TENANT_E, TENANT_W = "SA-TE", "SA-TW"
FORWARDING = Address(line1="9 Elm St", city="Peoria", state="IL", postal_code="61602")


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


def now_of(today: dt.date) -> dt.datetime:
    return dt.datetime.combine(today, dt.time(10, 0), tzinfo=dt.UTC)


def address(line1: str) -> Address:
    return Address(line1=line1, city="Springfield", state="IL", postal_code="62701")


def no_fieldwork_admin() -> AdminConfig:
    """The default configuration with fieldwork switched off for every SA type."""
    sa_types = {code: t.model_copy(update={"fieldwork_required": False})
                for code, t in ADMIN.sa_types.items()}
    return ADMIN.model_copy(update={"sa_types": sa_types})


def with_installation(admin: AdminConfig, **options: Any) -> AdminConfig:
    return admin.model_copy(update={
        "installation": admin.installation.model_copy(update=options)})


class World:
    def __init__(self, admin: AdminConfig = ADMIN, *,
                 preferences: tuple[SeasonalPreference, ...] | None = None,
                 with_agreement: bool = True) -> None:
        self.admin = admin
        self.today = TODAY
        self.store = InMemoryCcb()
        prefs = preferences if preferences is not None else (
            SeasonalPreference(service_type="E"), SeasonalPreference(service_type="G"),
            SeasonalPreference(service_type="W"))
        self.store.add(
            Person(id="P-T", name="TENANT,TOM"), Person(id="P-N", name="NEWMAN,NORA"),
            Person(id="P-L", name="LANDLORD,LEO"),
            Account(id=TENANT, main_person_id="P-T"), Account(id=NEW_TENANT, main_person_id="P-N"),
            Account(id=LANDLORD, main_person_id="P-L"),
            LandlordAgreement(id="LA-1", landlord_person_id="P-L", landlord_account_id=LANDLORD,
                              preferences=prefs),
            Premise(id=PREMISE, address=address("12 Oak St"),
                    landlord_agreement_id="LA-1" if with_agreement else None),
            ServicePoint(id=SP_E, premise_id=PREMISE, sp_type="E-RES",
                         measuring_components=(MeasuringComponent(id="MC-E", mc_class="kWh"),)),
            ServicePoint(id=SP_G, premise_id=PREMISE, sp_type="G-RES"),
            ServicePoint(id=SP_W, premise_id=PREMISE, sp_type="W-RES"),
        )
        self.add_active_sa(TENANT_E, TENANT, "E-RES", PREMISE, [SP_E])
        self.add_active_sa(TENANT_W, TENANT, "W-RES", PREMISE, [SP_W])

    def add_active_sa(self, sa_id: str, account_id: str, sa_type: str, premise_id: str | None,
                      sp_ids: list[str], master_sa_id: str | None = None) -> None:
        self.store.add(ServiceAgreement(id=sa_id, account_id=account_id, sa_type=sa_type,
                                        status=SaStatus.ACTIVE, start_date=SINCE,
                                        premise_id=premise_id, master_sa_id=master_sa_id))
        for sp_id in sp_ids:
            self.store.add(SaSpLink(id=f"L-{sa_id}-{sp_id}", sa_id=sa_id, sp_id=sp_id,
                                    start_date=SINCE))

    def run(self, command: Command, today: dt.date | None = None) -> Changes:
        when = today or self.today
        return self.store.execute(unit_of_work(command, self.admin, when, now_of(when)))

    def sa(self, sa_id: str) -> ServiceAgreement:
        sa = self.store.sa(sa_id)
        assert sa is not None, sa_id
        return sa

    def sas_of(self, account_id: str, *statuses: SaStatus) -> list[ServiceAgreement]:
        return [sa for sa in self.store.sas_of_account(account_id)
                if not statuses or sa.status in statuses]

    def landlord_sas(self, *statuses: SaStatus) -> list[ServiceAgreement]:
        return self.sas_of(LANDLORD, *statuses)

    def links(self, sa_id: str) -> list[SaSpLink]:
        return self.store.links_of_sa(sa_id)

    def fas(self, sa_id: str, purpose: FaPurpose | None = None) -> list[FieldActivity]:
        return [fa for fa in self.store.field_activities_of_sa(sa_id)
                if purpose is None or fa.purpose is purpose]

    def complete_fieldwork(self, sa_id: str, purpose: FaPurpose, read: float = 100.0) -> None:
        for fa in self.fas(sa_id, purpose):
            if fa.status is FaStatus.PENDING:
                self.run(CompleteFieldActivity(fa_id=fa.id, read_value=read))
