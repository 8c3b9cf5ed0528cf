"""c2m-sync: service agreements (CCB) to usage subscriptions (MDM) over Kafka."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("c2m-sync")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
