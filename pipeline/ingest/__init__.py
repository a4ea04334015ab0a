"""Ingestion: the interaction source → validated `raw_interactions` and a quarantine."""
