"""Sensors: failure alerts, freshness and gap filling for the carbon-intensity asset."""
