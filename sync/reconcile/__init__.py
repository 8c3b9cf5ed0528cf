"""Reconciliation and replay of the sync topics."""
