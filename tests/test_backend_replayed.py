"""Whether runs are replayed is asked of the backend, never read from its name."""

from harness.backends import BACKENDS, recorded_replayed
from harness.layout import results_folder, study_name


def test_only_the_replay_backend_is_replayed_and_gets_its_own_folder():
    assert BACKENDS["replay"].replayed and not BACKENDS["real"].replayed
    assert BACKENDS["replay"].folder("quick") == results_folder("quick", replayed=True)
    assert results_folder("quick", replayed=True) == "quick.replay"
    assert BACKENDS["real"].folder("quick") == results_folder("quick") == "quick"
    assert study_name("quick", "tpe", 3, replayed=True) == "quick.replay.tpe.seed-3"


def test_recorded_backend_names_are_read_through_the_backends():
    assert recorded_replayed("replay")
    assert not recorded_replayed("real")
    assert not recorded_replayed(None)  # records older than the replay name no backend
    assert not recorded_replayed("simulated")
