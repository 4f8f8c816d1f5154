"""Which tests need real processes or a browser, and the guard that keeps every other test from starting one.

The fast loop (``make test-fast``) deselects ``integration``, ``browser`` and ``slow`` tests, so it
must never start a server by accident. Two things see to that:

- **Classification at collection.** A test is ``integration`` when its own code, a fixture it
  uses, or code of this project either of them reaches (functions and the classes they name,
  followed statically) names something that starts a process: ``subprocess``,
  ``multiprocessing`` or :class:`~carbon_pipeline_tests.support.processes.ServerProcess`, which
  every server of ``support/`` runs through. Tests in a ``ui/`` directory are ``browser``.
- **A guard at run time.** An audit hook refuses to start a process (``subprocess.Popen``,
  ``os.system``, ``os.posix_spawn``, ``os.exec*``, ``os.fork``...) while a test that is neither
  ``integration`` nor ``browser`` runs its setup, call or teardown, so whatever the scan cannot see
  (a process started through a library, a method on an object handed in) fails that test with
  its name instead of slipping into the fast loop. Such a test gets an explicit
  ``@pytest.mark.integration``.

``slow`` (over ~10 s on the 2-core test machine) is marked by hand from ``pytest --durations=0``.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Generator, Iterator

import pytest

from carbon_pipeline_tests.support.processes import ServerProcess

INTEGRATION = "integration"
BROWSER = "browser"
BROWSER_DIRECTORY = "ui"
# The project's own code, followed when scanning; libraries are taken as they are.
OUR_PACKAGES = frozenset({"carbon_pipeline", "carbon_pipeline_tests", "benchmarks"})
_PROCESS_STARTERS: tuple[object, ...] = (ServerProcess,)
_STARTER_MODULES = frozenset({"subprocess", "multiprocessing"})
# Audit events (see the "Audit events table" of the Python docs) of every way to start a process.
_PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty", "os.spawn"}
)


class UnmarkedProcessStart(RuntimeError):
    """A test that is not marked integration (nor browser) tried to start a process."""


class ProcessScan:
    """Whether code reaches a process starter, remembering every answer (the suite shares its helpers).

    ``ours`` names the modules whose functions and classes are followed: the project's packages
    and the test modules collected; everything else (libraries) is taken as it is.
    """

    def __init__(self, ours: frozenset[str]) -> None:
        self._ours = ours
        self._seen: dict[int, bool] = {}

    def starts_processes(self, target: object) -> bool:
        key = id(target)
        if key not in self._seen:
            self._seen[key] = False  # a cycle adds nothing; the answer is settled on the way back
            self._seen[key] = any(self._is_starter(value) for value in _references(target))
        return self._seen[key]

    def _is_starter(self, value: object) -> bool:
        if any(value is starter for starter in _PROCESS_STARTERS):
            return True
        module = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if not isinstance(module, str):
            return False
        if module.split(".")[0] in _STARTER_MODULES:  # the modules, or anything taken from them
            return True
        followed = inspect.isfunction(value) or inspect.isclass(value)
        ours = module.split(".")[0] in self._ours or module in self._ours
        return followed and ours and self.starts_processes(value)


def _references(target: object) -> Iterator[object]:
    """What the code of a function names (globals, closure cells), or the functions of a class."""
    if inspect.isclass(target):
        for member in vars(target).values():
            function = member.fget if isinstance(member, property) else member
            function = getattr(function, "__func__", function)  # static and class methods
            if inspect.isfunction(function):
                yield function
        return
    unwrapped = inspect.unwrap(target)  # type: ignore[arg-type]
    function = getattr(unwrapped, "__func__", unwrapped)  # a test method
    if not inspect.isfunction(function):
        return
    for name in _names(function.__code__):
        if name in function.__globals__:
            yield function.__globals__[name]
    for cell in function.__closure__ or ():
        try:
            yield cell.cell_contents
        except ValueError:  # a cell not yet filled
            continue


def _names(code: types.CodeType) -> Iterator[str]:
    """Global and attribute names of ``code`` and the functions, lambdas and comprehensions nested in it."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _names(constant)


def _fixture_functions(item: pytest.Function) -> Iterator[object]:
    # No public API lists an item's fixture definitions; pytest's own --fixtures-per-test reads this.
    for definitions in item._fixtureinfo.name2fixturedefs.values():
        for definition in definitions:
            yield definition.func


def starts_processes(item: pytest.Item, scan: ProcessScan) -> bool:
    """Whether the test, or one of its fixtures, reaches code that starts a process."""
    if not isinstance(item, pytest.Function):
        return False
    return any(scan.starts_processes(target) for target in (item.function, *_fixture_functions(item)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    test_modules = {item.module.__name__ for item in items if isinstance(item, pytest.Function) and item.module}
    scan = ProcessScan(OUR_PACKAGES | test_modules)
    for item in items:
        if item.path.parent.name == BROWSER_DIRECTORY:
            item.add_marker(BROWSER)
        if item.get_closest_marker(INTEGRATION) is None and starts_processes(item, scan):
            item.add_marker(INTEGRATION)


class ProcessGuard:
    """An audit hook that, while a test not allowed to start processes runs, refuses to start one."""

    def __init__(self) -> None:
        self.running: str | None = None  # node id of such a test, while it runs
        self.installed = False

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if self.running is not None and event in _PROCESS_EVENTS:
            # Only the executable: argv and the environment may hold a secret.
            what = f"{event} {args[0]!r}" if event == "subprocess.Popen" else event
            raise UnmarkedProcessStart(
                f"{self.running} starts a process ({what}) but is not marked integration: "
                "add @pytest.mark.integration so the fast loop (-m 'not integration') leaves it out"
            )


GUARD = ProcessGuard()


def pytest_configure() -> None:
    if not GUARD.installed:  # audit hooks cannot be removed, so one serves every session in the process
        sys.addaudithook(GUARD)
        GUARD.installed = True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    may_start = any(item.get_closest_marker(name) is not None for name in (INTEGRATION, BROWSER))
    outer, GUARD.running = GUARD.running, (None if may_start else item.nodeid)
    try:
        return (yield)
    finally:
        GUARD.running = outer
