"""What one command decided, for the store to persist in one transaction.

``changed`` is the single place where "this entity changed" is recorded: the store turns each
entry into an outbox row in the same transaction, so no state change can escape
synchronization. The ``put_*`` helpers record it; code must not assign into the dicts directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sync.ccb.model import (
    Account,
    Budget,
    CollectionProcess,
    CustomerContact,
    Entity,
    FieldActivity,
    FinancialTransaction,
    LandlordAgreement,
    MeterRead,
    Person,
    Premise,
    SaSpLink,
    ServiceAgreement,
    ServicePoint,
    SeveranceProcess,
    ToDoEntry,
    ToDoStatus,
)

SA = "SA"
PERSON = "PERSON"
SA_RELATIONSHIP = "SA_RELATIONSHIP"
# Entities that are not synchronized themselves but travel inside the snapshots of SAs: the
# outbox re-snapshots the SAs they reach (the account's SAs, the SAs at the premise, the SAs
# linked to the service point), so a change to them cannot escape synchronization either.
ACCOUNT = "ACCOUNT"
PREMISE = "PREMISE"
SERVICE_POINT = "SP"

# The entity collections of a unit of work, by attribute name: the one list that the changes,
# the in-memory store and anything else that walks "every table" share.
ENTITY_TABLES: dict[str, type[Entity]] = {
    "persons": Person,
    "accounts": Account,
    "premises": Premise,
    "service_points": ServicePoint,
    "landlord_agreements": LandlordAgreement,
    "sas": ServiceAgreement,
    "links": SaSpLink,
    "field_activities": FieldActivity,
    "reads": MeterRead,
    "todos": ToDoEntry,
    "contacts": CustomerContact,
    "financial_transactions": FinancialTransaction,
    "budgets": Budget,
    "collection_processes": CollectionProcess,
    "severance_processes": SeveranceProcess,
}


@dataclass
class Changes:
    """What one command decided; the store persists all of it in one transaction.

    New entities carry version 1 and are inserted; updated ones carry ``version = read + 1``
    and are written only if the stored version is still the one read.
    """

    persons: dict[str, Person] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    premises: dict[str, Premise] = field(default_factory=dict)
    service_points: dict[str, ServicePoint] = field(default_factory=dict)
    landlord_agreements: dict[str, LandlordAgreement] = field(default_factory=dict)
    sas: dict[str, ServiceAgreement] = field(default_factory=dict)
    links: dict[str, SaSpLink] = field(default_factory=dict)
    field_activities: dict[str, FieldActivity] = field(default_factory=dict)
    reads: dict[str, MeterRead] = field(default_factory=dict)
    todos: dict[str, ToDoEntry] = field(default_factory=dict)
    contacts: dict[str, CustomerContact] = field(default_factory=dict)
    financial_transactions: dict[str, FinancialTransaction] = field(default_factory=dict)
    budgets: dict[str, Budget] = field(default_factory=dict)
    collection_processes: dict[str, CollectionProcess] = field(default_factory=dict)
    severance_processes: dict[str, SeveranceProcess] = field(default_factory=dict)
    # Outbox hook: ("SA", id) / ("PERSON", id) / ("SA_RELATIONSHIP", id), and ("ACCOUNT", id) /
    # ("PREMISE", id) / ("SP", id) for what SA snapshots carry, in the order the entities first
    # changed; an entity appears once (the outbox snapshots it at commit).
    changed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The entries of ``changed`` as a set: a batch unit records thousands of changes, and a
    # list scan per entry would make recording them quadratic.
    _recorded: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False,
                                            compare=False)
    # The ids put into each collection, in order (repeats included): lets a reader that
    # indexes a collection (a batch chunk's work) catch up on what was put since it looked.
    _puts: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False,
                                        compare=False)
    # The unfinished To Do entries put so far by (type, drill kind, drill id), and how many of
    # the To Do puts that index has read: a unit that raises thousands of entries (a timeout
    # of every request MDM left unanswered) looks each key up before raising it.
    _open_todos: dict[tuple[str, str, str], str] = field(default_factory=dict, init=False,
                                                         repr=False, compare=False)
    _open_todos_read: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._recorded.update(self.changed)
        for name in ENTITY_TABLES:
            self._puts[name] = list(self.table(name))

    def puts_of(self, name: str) -> list[str]:
        """The ids put into the collection ``name`` so far, oldest first; read only."""
        return self._puts.setdefault(name, [])

    def _put(self, name: str, entity: Entity) -> None:
        entity_id: str = getattr(entity, "id")  # noqa: B009 - every stored entity has an id
        table: dict[str, Entity] = getattr(self, name)
        table[entity_id] = entity
        self._puts.setdefault(name, []).append(entity_id)

    def open_todo(self, todo_type: str, drill_kind: str, drill_id: str) -> ToDoEntry | None:
        """The unfinished To Do entry of ``todo_type`` for the drill key put in this unit of
        work, if any (as last put)."""
        puts = self.puts_of("todos")
        for todo_id in puts[self._open_todos_read:]:
            entry = self.todos[todo_id]
            key = (entry.todo_type, entry.drill_key.kind, entry.drill_key.id)
            if entry.status is not ToDoStatus.COMPLETE:
                self._open_todos[key] = todo_id
            elif self._open_todos.get(key) == todo_id:
                del self._open_todos[key]
        self._open_todos_read = len(puts)
        found = self._open_todos.get((todo_type, drill_kind, drill_id))
        return None if found is None else self.todos[found]

    def record_change(self, entity_type: str, entity_id: str) -> None:
        entry = (entity_type, entity_id)
        if entry not in self._recorded:
            self._recorded.add(entry)
            self.changed.append(entry)

    def note(self, line: str) -> None:
        self.notes.append(line)

    # --- put helpers: store the new version and record what the outbox must hear about -----

    def put_sa(self, sa: ServiceAgreement) -> None:
        self._put("sas", sa)
        self.record_change(SA, sa.id)
        if sa.master_sa_id is not None:
            self.record_change(SA_RELATIONSHIP, sa.id)

    def put_link(self, link: SaSpLink) -> None:
        # A link is part of its SA's snapshot: the SA changed.
        self._put("links", link)
        self.record_change(SA, link.sa_id)

    def put_person(self, person: Person) -> None:
        self._put("persons", person)
        self.record_change(PERSON, person.id)

    def put_account(self, account: Account) -> None:
        self._put("accounts", account)
        self.record_change(ACCOUNT, account.id)

    def put_premise(self, premise: Premise) -> None:
        self._put("premises", premise)
        self.record_change(PREMISE, premise.id)

    def put_service_point(self, service_point: ServicePoint) -> None:
        self._put("service_points", service_point)
        self.record_change(SERVICE_POINT, service_point.id)

    def put_landlord_agreement(self, agreement: LandlordAgreement) -> None:
        self._put("landlord_agreements", agreement)

    def put_field_activity(self, activity: FieldActivity) -> None:
        self._put("field_activities", activity)

    def put_read(self, read: MeterRead) -> None:
        self._put("reads", read)

    def put_todo(self, todo: ToDoEntry) -> None:
        self._put("todos", todo)

    def put_contact(self, contact: CustomerContact) -> None:
        self._put("contacts", contact)

    def put_financial_transaction(self, ft: FinancialTransaction) -> None:
        # FTs are not part of the SA snapshot: an FT changes the SA's status only through
        # close/reactivate, which go through ``put_sa``.
        self._put("financial_transactions", ft)

    def put_budget(self, budget: Budget) -> None:
        self._put("budgets", budget)

    def put_collection_process(self, process: CollectionProcess) -> None:
        self._put("collection_processes", process)

    def put_severance_process(self, process: SeveranceProcess) -> None:
        self._put("severance_processes", process)

    def table(self, name: str) -> dict[str, Entity]:
        """The collection named ``name`` (a key of :data:`ENTITY_TABLES`)."""
        if name not in ENTITY_TABLES:
            raise KeyError(f"no entity table {name!r}")
        table: dict[str, Entity] = getattr(self, name)
        return table

    def merge(self, other: Changes) -> None:
        """Fold ``other`` (decided later in the same unit of work) into this one."""
        for name in ENTITY_TABLES:
            for entity in other.table(name).values():
                self._put(name, entity)
        for entity_type, entity_id in other.changed:
            self.record_change(entity_type, entity_id)
        self.notes.extend(other.notes)

    def is_empty(self) -> bool:
        return not (self.changed or self.notes
                    or any(self.table(name) for name in ENTITY_TABLES))
