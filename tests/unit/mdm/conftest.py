from __future__ import annotations

import pytest

from sync.config.admin import AdminConfig
from tests.unit.mdm.builders import default_admin


@pytest.fixture(scope="session")
def admin() -> AdminConfig:
    return default_admin()
