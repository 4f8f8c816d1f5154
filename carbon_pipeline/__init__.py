"""Records WattTime grid carbon intensity in InfluxDB, one 15-minute interval at a time."""

__version__ = "0.1.0"
