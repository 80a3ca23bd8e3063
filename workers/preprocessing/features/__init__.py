"""Point-in-time features per customer from an event log (the build_features job)."""
