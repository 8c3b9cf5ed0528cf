"""Runtime settings: where the databases and the broker are, topic names, the business date.

Precedence, highest first: explicit values (CLI options), ``C2M_SYNC_*`` environment variables,
defaults. Defaults are the embedded set-up: SQLite files under ``./var`` and the in-process bus,
so nothing but Python is needed to run the demo.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "C2M_SYNC_"


class TopicNames(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sync_requests: str = "c2m.sync-requests"
    acknowledgements: str = "c2m.sync-acks"
    dead_letters: str = "c2m.sync-dead-letters"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ccb_db_url: str = "sqlite:///var/ccb.db"
    mdm_db_url: str = "sqlite:///var/mdm.db"
    broker_url: str = "memory://"
    topics: TopicNames = TopicNames()
    topic_partitions: int = Field(default=3, ge=1, le=1000)
    business_date: dt.date | None = None
    admin_config: Path | None = None

    @field_validator("broker_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("memory://", "kafka://")):
            raise ValueError("broker URL must start with memory:// or kafka://")
        return value

    @property
    def kafka_bootstrap_servers(self) -> str:
        """``host:port[,host:port]`` for Kafka clients; only for ``kafka://`` URLs."""
        if not self.broker_url.startswith("kafka://"):
            raise ValueError(f"broker URL {self.broker_url!r} is not a kafka:// URL")
        return self.broker_url.removeprefix("kafka://").rstrip("/")


# environment variable suffix -> settings field (dotted for nested topic names)
_ENV_FIELDS = {
    "CCB_DB_URL": "ccb_db_url",
    "MDM_DB_URL": "mdm_db_url",
    "BROKER_URL": "broker_url",
    "TOPIC_SYNC_REQUESTS": "topics.sync_requests",
    "TOPIC_ACKNOWLEDGEMENTS": "topics.acknowledgements",
    "TOPIC_DEAD_LETTERS": "topics.dead_letters",
    "TOPIC_PARTITIONS": "topic_partitions",
    "BUSINESS_DATE": "business_date",
    "ADMIN_CONFIG": "admin_config",
}


class SettingsError(ValueError):
    """A setting with a bad value; names the environment variable or option it came from."""


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from ``overrides`` (dotted field names, None = not given) over the
    ``C2M_SYNC_*`` environment over the defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for suffix, field in _ENV_FIELDS.items():
        name = ENV_PREFIX + suffix
        if env.get(name):
            values[field] = env[name]
            origin[field] = f"environment variable {name}"
    for field, value in (overrides or {}).items():
        if value is not None:
            values[field] = value
            origin[field] = f"option --{field.replace('_', '-').replace('.', '-')}"
    nested: dict[str, Any] = {}
    for field, value in values.items():
        if "." in field:
            section, key = field.split(".", 1)
            nested.setdefault(section, {})[key] = value
        else:
            nested[field] = value
    try:
        return Settings.model_validate(nested)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"])
            where = origin.get(field, field)
            problems.append(f"{where}: {item['msg']} (got {item['input']!r})")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
