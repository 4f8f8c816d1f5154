"""Electricity Maps v3 (average carbon intensity, gCO2eq/kWh): client, resources and a simulator."""
