"""Servers, processes and helpers the tests share: InfluxDB, PostgreSQL, Dagster processes, the secret scan."""
