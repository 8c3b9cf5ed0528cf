"""MDM side: usage subscriptions and their validations (pure domain)."""
