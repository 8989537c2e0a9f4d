import gc
import os
import shutil
import signal
import sys

import pytest
from filelock import FileLock

from harness.datasets import DataSpec, load_data
from tests import e2e


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_reaches_children():
    """A suite started in the background (`nohup ... &`) inherits SIGINT ignored, and so would
    every `python -m harness` the tests start: the Ctrl-C tests would test nothing. Handling it
    here makes the children start with the default, as from a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config):
    """Under pytest-xdist, each worker trains on its own cores (its children inherit them): two
    workers sharing both cores slow each other's training many times over."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return
    cores = sorted(os.sched_getaffinity(0))
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker.removeprefix("gw"))
    mine = cores[index::count] or [cores[index % len(cores)]]
    os.sched_setaffinity(0, mine)
    import torch  # already imported by the conftest's imports, with a thread per core

    torch.set_num_threads(len(mine))


# The modules whose tests each start several real processes (15-30 s apiece on 2 cores), the
# longest first.
LONGEST_FIRST = ("test_two_stage", "test_workers", "test_interruptions", "test_replay")


def pytest_collection_modifyitems(items):
    """The end-to-end (slow) tests first, the longest modules' first among them, each group
    otherwise in its order: under pytest-xdist a long test started last would leave the other
    worker idle at the end."""

    def order(item):
        slow, module = item.get_closest_marker("slow") is not None, item.path.stem
        rank = (
            LONGEST_FIRST.index(module) if slow and module in LONGEST_FIRST else len(LONGEST_FIRST)
        )
        return not slow, rank

    items.sort(key=order)


def pytest_collection_finish(session):
    """What collection imported (torch, pandas, the project, every test module) lives until the
    session ends: frozen, Python's full garbage collections stop scanning it again and again."""
    _freeze_what_lives_on()


@pytest.hookimpl(trylast=True)  # after pytest's own teardown: the test's fixtures are gone
def pytest_runtest_teardown(item, nextitem):
    """Modules a test imported late (scikit-learn, matplotlib, MLflow) live on too."""
    if len(sys.modules) - _frozen_with_modules[0] >= 20:
        _freeze_what_lives_on()


_frozen_with_modules = [0]


def _freeze_what_lives_on() -> None:
    """Collect, then move every object left to the permanent generation (``gc.freeze``): a
    full collection in a test process then costs about what it costs in a `python -m harness`
    process. Without it the full collections of one worker took 20 s of a 290 s run here."""
    gc.collect()  # garbage is not frozen with the rest
    gc.freeze()
    _frozen_with_modules[0] = len(sys.modules)


def _built_once(tmp_path_factory, name, build):
    """The folder ``name`` built by ``build(folder)`` once for the whole run: under pytest-xdist
    the first worker builds it and the others wait for it, then read the same folder."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        root = tmp_path_factory.mktemp(name)
        build(root)
        return root
    root = tmp_path_factory.getbasetemp().parent / name
    with FileLock(str(root) + ".lock"):
        if not (root / ".built").exists():
            shutil.rmtree(root, ignore_errors=True)  # what a failed build left
            root.mkdir()
            build(root)
            (root / ".built").touch()
    return root


@pytest.fixture(scope="session")
def tiny_data():
    """12 synthetic stations x 14 days: small enough to train in seconds."""
    return load_data(DataSpec(stations=12, days=14, seed=3))


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on loopback. CI installs it (.ci/run); elsewhere a missing server
    skips the tests that need it, saying so, but under CI it is a failure."""
    from tests.postgres_server import PostgresServer, find_bin

    bindir = find_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail(
                "PostgreSQL is not installed; "
                ".ci/run should have installed Debian's postgresql package"
            )
        pytest.skip("PostgreSQL is not installed here (CI installs it): apt-get install postgresql")
    server = PostgresServer(bindir)
    url = server.start()
    yield url
    server.stop()


def _left_unchanged(root):
    """Yields ``root``; at the session's end, fails if any test wrote into it (a test that
    changes results works on a copy: tests.e2e.copy_results)."""
    before = e2e.fingerprint(root)
    yield root
    assert e2e.fingerprint(root) == before, f"a test wrote into the shared folder {root}"


@pytest.fixture(scope="session")
def recorded(tmp_path_factory):
    """Real learning curves of the smoke experiment (10 Sobol configurations + v4, twice each),
    recorded once for the replay tests and benchmarks. Read-only: copy it to change it."""

    def build(root):
        assert e2e.cli("record", configs=10, repeats=2, results=root) == 0

    root = _built_once(tmp_path_factory, "recorded", build)
    yield from _left_unchanged(root)


@pytest.fixture(scope="session")
def smoke_compare(tmp_path_factory):
    """The shared real smoke comparison, run once: random and tpe_hyperband, seeds 0 and 1,
    6 trials a run, each incumbent re-evaluated with 2 seeds (compare's defaults). Read-only:
    a test that changes results (or adds runs) works on a copy (``smoke_results``)."""

    def build(root):
        assert e2e.cli("compare", strategies=e2e.SHARED_STRATEGIES, seeds=2, results=root) == 0

    root = _built_once(tmp_path_factory, "smoke_compare", build)
    yield from _left_unchanged(root)


@pytest.fixture
def smoke_results(smoke_compare, tmp_path):
    """A copy of the shared smoke comparison that the test may change."""
    return e2e.copy_results(smoke_compare, tmp_path / "results")
