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


INDEX_ENDPOINT = "v3/signal-index"


def my_access(state: SimulatorState, request: Request) -> dict[str, Any]:
    """Per signal type, the regions the account may read anything of (signal types with none are left out).

    A region outside the plan is still listed when its signal index is readable, with that endpoint alone.
    """
    plan = state.plan_regions(request.user)
    wanted_region = request.params.get("region")
    signals = [signal for signal in SIGNAL_UNITS if request.params.get("signal_type", signal) == signal]
    listed = []
    for signal in signals:
        regions = [
            _access_region(state, name, region, endpoints)
            for name, region in state.signal_regions(signal).items()
            if wanted_region in (None, name) and (endpoints := _endpoints(state, request.user, plan, name))
        ]
        if regions or plan is None:
            listed.append({"signal_type": signal, "regions": regions})
    return {"signal_types": listed}


def _endpoints(state: SimulatorState, user: str, plan: frozenset[str] | None, region: str) -> list[str]:
    """What the account may read of a region: history within its plan, forecasts where allowed, the index."""
    endpoints = []
    if plan is None or region in plan:
        endpoints = ["v3/forecast", "v3/historical"] if state.has_forecast_access(region) else ["v3/historical"]
    return [*endpoints, INDEX_ENDPOINT] if state.has_index_access(user, region) else endpoints


def _access_region(state: SimulatorState, name: str, region: Region, endpoints: list[str]) -> dict[str, Any]:
    """One region's entry, listing the given endpoints."""
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
