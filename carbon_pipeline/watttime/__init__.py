"""WattTime v3: the HTTP client, its typed errors, account registration, the Dagster resources and the simulator."""
