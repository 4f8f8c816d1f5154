"""Typed failures of the WattTime v3 API.

Each class maps to a different operator action (fix credentials, buy a plan, fix the region list, wait for
WattTime), so callers and Dagster retry policies can branch on the type or on `retryable` instead of parsing
messages. Every error carries WattTime's `x-request-id` when a reply was received, because WattTime support
asks for it.
"""


class WattTimeError(Exception):
    """Base class, so one `except WattTimeError` covers every WattTime failure."""

    retryable: bool = False

    def __init__(self, message: str, *, request_id: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        message = super().__str__()
        return message if self.request_id is None else f"{message} (x-request-id: {self.request_id})"


class WattTimeAuthError(WattTimeError):
    """Credentials or token rejected: retrying cannot help until the configuration is fixed."""


class WattTimePlanError(WattTimeError):
    """The account's plan does not cover the region or signal ("Invalid scope")."""


class WattTimeUnknownRegionError(WattTimeError):
    """WattTime does not know the region name we sent."""


class WattTimeArchiveError(WattTimeError):
    """/v3/forecast/historical has nothing for the window (HTTP 404): it lies outside WattTime's forecast archive.

    Asking again cannot help; the forecasts of that window have to come from elsewhere or be given up.
    """


class WattTimeNoCoverageError(WattTimeError):
    """/v3/region-from-loc knows no region serving the coordinates for that signal (HTTP 404)."""


class WattTimeBadRequestError(WattTimeError):
    """WattTime rejected the query parameters for a reason other than the region."""


class WattTimeUsernameTakenError(WattTimeBadRequestError):
    """/register refused the username because an account already has it: only another name can succeed."""


class WattTimeForbiddenError(WattTimeError):
    """A 403 that is not WattTime's own plan error, typically from the CloudFront edge."""


class WattTimeResponseError(WattTimeError):
    """The reply could not be understood: malformed JSON, unexpected shape or unparseable timestamps."""


class WattTimeUnavailableError(WattTimeError):
    """WattTime kept failing transiently (429, 5xx, timeouts, resets) until the retry budget ran out."""

    retryable = True


class WattTimeTLSError(WattTimeError):
    """The server's certificate was not trusted: a wrong base URL or an intercepting proxy, not an outage."""
