"""Where validated points are stored: the sink interface, line protocol, InfluxDB and local files."""
