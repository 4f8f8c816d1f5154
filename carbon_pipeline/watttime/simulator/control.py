"""`/_simulator/...`: what tests and people use to steer the simulator: faults, token expiry, statistics."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from carbon_pipeline.watttime.simulator.api_errors import ApiError
from carbon_pipeline.watttime.simulator.faults import Fault
from carbon_pipeline.watttime.simulator.queries import Request, json_object
from carbon_pipeline.watttime.simulator.state import SimulatorState


def add_fault(state: SimulatorState, request: Request) -> dict[str, Any]:
    try:
        fault = Fault(**json_object(request))
    except (TypeError, ValueError) as exc:
        raise ApiError(422, {"detail": str(exc)}) from None
    state.inject(fault)
    return {"ok": "Fault queued", "fault": asdict(fault)}


def clear_faults(state: SimulatorState, request: Request) -> dict[str, Any]:
    state.clear_faults()
    return {"ok": "Faults cleared"}


def expire_tokens(state: SimulatorState, request: Request) -> dict[str, Any]:
    state.expire_tokens()
    return {"ok": "Tokens expired"}


def stats(state: SimulatorState, request: Request) -> dict[str, Any]:
    return state.stats()
