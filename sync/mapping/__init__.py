"""Mapping between CCB snapshots, wire messages and MDM commands."""
