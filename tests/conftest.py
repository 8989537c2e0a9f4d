import signal

import pytest

from harness.datasets import DataSpec, load_data


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_reaches_children():
    """A suite started in the background (`nohup ... &`) inherits SIGINT ignored, and so would
    every `python -m harness` the tests start: the Ctrl-C tests would test nothing. Handling it
    here makes the children start with the default, as from a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def tiny_data():
    """12 synthetic stations x 14 days: small enough to train in seconds."""
    return load_data(DataSpec(stations=12, days=14, seed=3))


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on loopback. CI installs it (.ci/run); elsewhere a missing server
    skips the tests that need it, saying so, but under CI it is a failure."""
    import os

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


@pytest.fixture(scope="session")
def recorded(tmp_path_factory):
    """Real learning curves of the smoke experiment (10 Sobol configurations + v4, twice each),
    recorded once for the replay tests and benchmarks."""
    from harness.cli import main

    root = tmp_path_factory.mktemp("recorded")
    assert (
        main(
            [
                "record",
                "--experiment",
                "smoke",
                "--configs",
                "10",
                "--repeats",
                "2",
                "--results",
                str(root),
                "--no-progress",
            ]
        )
        == 0
    )
    return root
