"""Creating a WattTime account (POST /register): the one WattTime call that is never retried."""

from collections.abc import Mapping

import httpx

from carbon_pipeline.watttime.endpoints import (
    REGISTER_PATH,
    RETRYABLE_STATUSES,
    USER_AGENT,
    WATTTIME_BASE_URL,
    Call,
    request_id_of,
    require,
    validate_base_url,
)
from carbon_pipeline.watttime.errors import WattTimeError, WattTimeUnavailableError, WattTimeUsernameTakenError
from carbon_pipeline.watttime.replies import error_text, json_or_none, status_error

# WattTime's SDK gives /register 10 s to connect and 60 s to answer.
REGISTER_CONNECT_TIMEOUT_SECONDS = 10.0
REGISTER_TIMEOUT_SECONDS = 60.0


def register_account(
    username: str,
    password: str,
    email: str,
    *,
    org: str | None = None,
    base_url: str = WATTTIME_BASE_URL,
    timeout_seconds: float = REGISTER_TIMEOUT_SECONDS,
) -> None:
    """Create a WattTime account: POST /register with a JSON body, as WattTime's docs and SDK send it.

    Sent exactly once: a POST whose reply was lost may still have created the account, and a blind retry would
    then report the username as taken. Failures are typed `WattTimeError`s that never quote the password and
    carry no exception chain, because httpx's exceptions hold the request and so the body with the password.
    """
    require(bool(username) and bool(password) and bool(email), "username, password and email must all be set")
    require(timeout_seconds > 0, "timeout_seconds must be > 0")
    url = validate_base_url(base_url)
    call = Call(REGISTER_PATH, method="POST")
    body = {"username": username, "password": password, "email": email} | ({"org": org} if org else {})
    timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, REGISTER_CONNECT_TIMEOUT_SECONDS))
    with httpx.Client(base_url=url, timeout=timeout, headers=USER_AGENT) as http:
        outcome = _post_once(http, call, body)
    if isinstance(outcome, httpx.HTTPError):
        raise _registration_unreachable(call, url, outcome)
    if not outcome.is_success:
        raise _redacted(_registration_error(call, username, outcome), password)


def _post_once(http: httpx.Client, call: Call, body: Mapping[str, str]) -> httpx.Response | httpx.HTTPError:
    """Return a transport failure instead of raising it, so the caller's error is raised outside its chain."""
    try:
        return http.post(call.path, json=body)
    except httpx.HTTPError as exc:
        return exc


def _registration_unreachable(call: Call, url: str, failure: httpx.HTTPError) -> WattTimeUnavailableError:
    """Whether the request left tells whether the account may exist, and so what to do next."""
    detail = f"{type(failure).__name__}: {failure}"
    if isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout):
        return WattTimeUnavailableError(
            f"{call.describe()}: could not reach WattTime at {url} ({detail}); no account was created"
        )
    return WattTimeUnavailableError(
        f"{call.describe()}: no reply from WattTime at {url} ({detail}); the account may have been created, "
        "so try logging in with it before registering again"
    )


def _registration_error(call: Call, username: str, response: httpx.Response) -> WattTimeError:
    """Single out the replies a user answers differently from a bad request: a taken name, a busy server."""
    status, request_id = response.status_code, request_id_of(response)
    if status in RETRYABLE_STATUSES:
        return WattTimeUnavailableError(
            f"{call.describe()}: WattTime could not take the registration now (HTTP {status}); try again later",
            request_id=request_id,
        )
    body = json_or_none(response)
    text = "" if body is None else error_text(body)
    if status == 400 and "taken" in text.lower():
        return WattTimeUsernameTakenError(
            f"{call.describe()}: the username {username!r} is already taken; choose another (WattTime said: {text})",
            request_id=request_id,
        )
    return status_error(call, response)


def _redacted(error: WattTimeError, secret: str) -> WattTimeError:
    """Validation messages may echo the rejected input; a password must reach no log, terminal or traceback."""
    message = str(error.args[0]) if error.args else ""
    if secret not in message:
        return error
    return type(error)(message.replace(secret, "***"), request_id=error.request_id, retryable=error.retryable)
