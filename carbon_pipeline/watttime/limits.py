"""WattTime's per-account limits: a request budget and a login budget (`carbon_pipeline.rate_limits`).

WattTime allows 3,000 requests and 100 logins per 5 minutes per account; the client spaces its requests
(`spaced_rate`) and keeps logins within their window. Both budgets are the client's own, or shared by every
process on the host through a folder.
"""

from pathlib import Path

from pyrate_limiter import Rate

from carbon_pipeline.rate_limits import Budgets, account_budgets, spaced_rate, window_rate

REQUEST = "request"
LOGIN = "login"


class WattTimeLimits:
    """Blocks each caller until the account has room for one more request (or login)."""

    def __init__(self, budgets: Budgets) -> None:
        self._budgets = budgets

    def wait_for_request(self) -> None:
        """Take one request permit, waiting as long as the budget needs."""
        self._budgets.take(REQUEST)

    def wait_for_login(self) -> None:
        """Take one login permit (the login also takes a request permit)."""
        self._budgets.take(LOGIN)

    def close(self) -> None:
        self._budgets.close()


def watttime_rates(requests_per_second: float, login_limit: int, login_window_seconds: float) -> dict[str, Rate]:
    return {REQUEST: spaced_rate(requests_per_second), LOGIN: window_rate(login_limit, login_window_seconds)}


def account_limits(
    folder: Path | None, username: str, requests_per_second: float, login_limit: int, login_window_seconds: float
) -> WattTimeLimits:
    """The account's budgets: shared through `folder` by every process on the host, else this client's own."""
    rates = watttime_rates(requests_per_second, login_limit, login_window_seconds)
    return WattTimeLimits(account_budgets(folder, username, rates))
