"""The launcher's KRaft cluster id: Kafka's Uuid text form, never starting with "-" (the storage
tool would take such an id for an option and refuse to format: one broker start in 64 failed
so)."""

from __future__ import annotations

import base64
import uuid

import pytest

from sync.devtools import kafka
from sync.devtools.kafka import _cluster_id


def test_cluster_ids_are_16_bytes_in_url_safe_base64_and_never_look_like_options() -> None:
    ids = [_cluster_id() for _ in range(5000)]  # about 78 would start with "-" if drawn once
    assert not any(text.startswith("-") for text in ids)
    assert all(len(base64.urlsafe_b64decode(text + "==")) == 16 for text in ids)
    assert len(set(ids)) == len(ids)


def test_an_id_starting_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    dash = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))
    plain = uuid.UUID(int=1)
    draws = iter([dash, dash, plain])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    assert _cluster_id() == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
