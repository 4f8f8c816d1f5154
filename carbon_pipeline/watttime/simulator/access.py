"""`/v3/my-access` and `/v3/region-from-loc`: which regions, endpoints and models an account has, and where."""

from __future__ import annotations

from typing import Any

from carbon_pipeline.watttime.simulator.api_errors import ApiError
from carbon_pipeline.watttime.simulator.catalogue import SIGNAL_UNITS, Region, region_at
from carbon_pipeline.watttime.simulator.documents import MODEL_TYPE
from carbon_pipeline.watttime.simulator.queries import Request, degrees, require_params, signal_type_of
from carbon_pipeline.watttime.simulator.signal import DATA_START
from carbon_pipeline.watttime.simulator.state import SimulatorState

NO_COVERAGE = "No coverage available for these coordinates and signal_type"


def my_access(state: SimulatorState, request: Request) -> dict[str, Any]:
    """Per signal type, the regions the plan covers (signal types it covers none of are left out)."""
    plan = state.plan_regions(request.user)
    wanted_region = request.params.get("region")
    signals = [signal for signal in SIGNAL_UNITS if request.params.get("signal_type", signal) == signal]
    listed = []
    for signal in signals:
        regions = [
            _access_region(state, name, region)
            for name, region in state.signal_regions(signal).items()
            if (plan is None or name in plan) and wanted_region in (None, name)
        ]
        if regions or plan is None:
            listed.append({"signal_type": signal, "regions": regions})
    return {"signal_types": listed}


def _access_region(state: SimulatorState, name: str, region: Region) -> dict[str, Any]:
    """One region's entry; forecasts are listed only where the account may read them."""
    models = [
        {
            "model": model,
            "data_start": DATA_START.date().isoformat(),
            "train_start": DATA_START.date().isoformat(),
            "train_end": model,
            "type": MODEL_TYPE,
        }
        for model in state.models
    ]
    endpoints = ["v3/forecast", "v3/historical"] if state.has_forecast_access(name) else ["v3/historical"]
    return {
        "region": name,
        "region_full_name": region.full_name,
        "parent": region.parent,
        "data_point_period_seconds": region.period_seconds,
        "endpoints": [{"endpoint": endpoint, "models": models} for endpoint in endpoints],
    }


def region_from_loc(state: SimulatorState, request: Request) -> dict[str, Any]:
    """The region serving a point for a signal type; a point no region covers is a 404, like the real API."""
    require_params(request, "latitude", "longitude", "signal_type")
    latitude, longitude = degrees(request, "latitude"), degrees(request, "longitude")
    signal_type = signal_type_of(request)
    served = state.signal_regions(signal_type)
    region = region_at(signal_type, latitude, longitude, served)
    if region is None:
        raise ApiError(
            404,
            {
                "error": NO_COVERAGE,
                "latitude": request.params["latitude"],
                "longitude": request.params["longitude"],
                "signal_type": signal_type,
            },
        )
    return {"region": region, "region_full_name": served[region].full_name, "signal_type": signal_type}
