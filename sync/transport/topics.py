"""The topics the synchronization needs, and how an existing topic is checked against them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sync.config.settings import KafkaSecurity, Settings
from sync.transport.bus import (
    BrokerUnavailableError,
    BusError,
    TopicDescription,
    TopicOutcome,
    TopicSpec,
    TopicStatus,
)

# The compactor may not touch records younger than this, so replay and reconcile still see
# every version written in the last week, not only the latest per key.
SYNC_REQUEST_MIN_COMPACTION_LAG_MS = 7 * 24 * 60 * 60 * 1000


def sync_topic_specs(settings: Settings) -> list[TopicSpec]:
    """Sync requests (compacted: the latest snapshot per entity key is enough to rebuild MDM),
    acknowledgements and dead letters, each with the configured partition count."""
    names = settings.topics
    partitions = settings.topic_partitions
    return [
        TopicSpec(names.sync_requests, partitions, compacted=True,
                  min_compaction_lag_ms=SYNC_REQUEST_MIN_COMPACTION_LAG_MS),
        TopicSpec(names.acknowledgements, partitions),
        TopicSpec(names.dead_letters, partitions),
    ]


def topic_problems(spec: TopicSpec, existing: TopicDescription) -> tuple[str, ...]:
    """How an existing topic differs from its spec, one sentence each (empty when it matches).

    Neither difference can be repaired by creating again: Kafka only adds partitions (which
    moves keys to other partitions) and a cleanup policy change is an operator decision.
    """
    problems = []
    if existing.partitions != spec.partitions:
        problems.append(f"topic {spec.name!r} has {existing.partitions} partitions, "
                        f"configured {spec.partitions}")
    if existing.compacted != spec.compacted:
        problems.append(
            f"topic {spec.name!r} has cleanup.policy "
            f"{existing.configs.get('cleanup.policy', 'delete')!r}, configured "
            f"{spec.kafka_configs()['cleanup.policy']!r}")
    return tuple(problems)


class KafkaTopicAdmin:
    """Topic creation and description on a Kafka cluster (kafka-python's admin client, whose
    3.x methods return plain dicts). Blocking: the Kafka bus calls it from a worker thread."""

    def __init__(self, bootstrap_servers: str, client_id: str = "c2m-sync", *,
                 security: KafkaSecurity | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.security = security or KafkaSecurity()
        self._client_id = client_id

    def _client(self) -> Any:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        from sync.transport.security import kafka_python_options

        try:
            return KafkaAdminClient(bootstrap_servers=self.bootstrap_servers,
                                    client_id=self._client_id,
                                    **kafka_python_options(self.security))
        except KafkaError as error:
            raise BrokerUnavailableError(
                f"cannot reach Kafka at {self.bootstrap_servers}: "
                f"{type(error).__name__}: {error}") from error

    def create_topics(self, specs: Sequence[TopicSpec]) -> list[TopicOutcome]:
        from kafka.errors import TopicAlreadyExistsError, for_code

        if not specs:
            return []
        admin = self._client()
        try:
            response = admin.create_topics(
                {spec.name: {"num_partitions": spec.partitions,
                             # -1: the cluster's default.replication.factor (1 on a dev
                             # broker, typically 3 in production)
                             "replication_factor": -1,
                             "configs": spec.kafka_configs()} for spec in specs},
                raise_errors=False, wait_for_metadata=False)
            errors = {topic["name"]: topic["error_code"] for topic in response["topics"]}
            created, existing = [], []
            for spec in specs:
                code = errors.get(spec.name, 0)
                if code == 0:
                    created.append(spec)
                elif for_code(code) is TopicAlreadyExistsError:
                    existing.append(spec)
                else:
                    error = for_code(code)
                    raise BusError(f"cannot create topic {spec.name!r} on "
                                   f"{self.bootstrap_servers}: {error.__name__}")
            if created:
                admin.wait_for_topics([spec.name for spec in created], timeout_ms=30_000)
            described = {d.name: d for d in self._describe(admin, [s.name for s in existing])}
        finally:
            admin.close()
        outcomes = []
        for spec in specs:
            if spec.name not in described:
                outcomes.append(TopicOutcome(spec, TopicStatus.CREATED))
                continue
            problems = topic_problems(spec, described[spec.name])
            outcomes.append(TopicOutcome(
                spec, TopicStatus.DIFFERS if problems else TopicStatus.EXISTS, problems))
        return outcomes

    def describe_topics(self, names: Sequence[str] | None = None) -> list[TopicDescription]:
        admin = self._client()
        try:
            if names is None:
                names = [name for name in admin.list_topics() if not name.startswith("__")]
            return self._describe(admin, names)
        finally:
            admin.close()

    @staticmethod
    def _describe(admin: Any, names: Sequence[str]) -> list[TopicDescription]:
        from kafka.admin import ConfigResource, ConfigResourceType

        if not names:
            return []
        topics = [t for t in admin.describe_topics(list(names)) if t.get("error_code", 0) == 0]
        if not topics:
            return []
        resources = [ConfigResource(ConfigResourceType.TOPIC, t["name"]) for t in topics]
        configs = admin.describe_configs(resources, config_filter="all").get("topic", {})
        found = []
        for topic in topics:
            values = {key: str(entry["value"])
                      for key, entry in configs.get(topic["name"], {}).items()
                      if key in _REPORTED_CONFIGS}
            found.append(TopicDescription(
                topic["name"], len(topic["partitions"]),
                "compact" in values.get("cleanup.policy", "delete").split(","), values))
        return sorted(found, key=lambda description: description.name)


# The topic settings `topics describe` shows and create compares.
_REPORTED_CONFIGS = frozenset({"cleanup.policy", "min.compaction.lag.ms", "retention.ms"})
