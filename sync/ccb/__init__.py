"""CCB side: customers, premises, service agreements and their lifecycle (pure domain)."""
