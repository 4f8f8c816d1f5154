"""Dagster event-log storages that write a single-run backfill's per-interval events in batches."""
