"""The CCB side of the sync pipeline: the outbox-backed store, the relay that publishes sync
requests, and the consumer of MDM's acknowledgements (SPEC.md section 6)."""
