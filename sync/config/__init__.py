"""Runtime settings and admin data."""

from sync.config.admin import AdminConfig, AdminConfigError, load_admin_config
from sync.config.settings import Settings, SettingsError, load_settings

__all__ = [
    "AdminConfig",
    "AdminConfigError",
    "Settings",
    "SettingsError",
    "load_admin_config",
    "load_settings",
]
