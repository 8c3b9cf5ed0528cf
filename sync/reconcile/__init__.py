"""Reconciliation and replay of the sync topics.

:mod:`sync.reconcile.compare` compares what CCB says MDM should hold with what MDM holds.
"""
