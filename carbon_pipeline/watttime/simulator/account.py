"""`/login` and `/register`: the simulated accounts, their passwords and their tokens."""

from __future__ import annotations

from typing import Any

from carbon_pipeline.watttime.simulator.api_errors import ApiError, detail, missing, too_many_requests, unprocessable
from carbon_pipeline.watttime.simulator.queries import Request, basic_credentials, json_object
from carbon_pipeline.watttime.simulator.state import SimulatorState


def login(state: SimulatorState, request: Request) -> dict[str, Any]:
    username, password = basic_credentials(request.authorization)
    if not state.allow("login", username, state.config.login_rate_limit):
        raise too_many_requests()
    token = state.login(username, password) if username else None
    if token is None:
        raise ApiError(403, {"error": "Invalid username or password"})
    return {"token": token}


def _password_problems(password: str) -> list[str]:
    checks = [
        (len(password) >= 8, "must be at least 8 characters long"),
        (any(c.isalpha() for c in password), "must contain a letter"),
        (any(c.isdigit() for c in password), "must contain a number"),
        (any(not c.isalnum() for c in password), "must contain a special character"),
    ]
    return [f"password {message}" for ok, message in checks if not ok]


def register(state: SimulatorState, request: Request) -> dict[str, Any]:
    body = json_object(request)
    details = [
        missing("body", name)
        for name in ("username", "password", "email")
        if not isinstance(body.get(name), str) or not body[name]
    ]
    if not details:
        details = [
            detail("body", "password", msg=problem, error_type="value_error")
            for problem in _password_problems(body["password"])
        ]
        if "@" not in body["email"]:
            message = "value is not a valid email address"
            details.append(detail("body", "email", msg=message, error_type="value_error.email"))
    if details:
        raise unprocessable(*details)
    if not state.register(body["username"], body["password"]):
        raise ApiError(400, {"error": "That username is taken. Please choose another."})
    return {"ok": "User created", "user": body["username"]}
