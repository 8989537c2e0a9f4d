"""Optuna storages: one embedded journal file per study by default, any Optuna storage URL on
request.

The default is Optuna's journal file: a few ms per trial (SQLite costs 50-200 ms in its many
commits, measured here), safe for several processes on one machine, and readable by
optuna-dashboard (`optuna-dashboard results/<experiment>/<strategy>/seed-<n>/optuna.journal`).
Each study has its own journal beside its records, so a write torn by one study's crash cannot
make another study unreadable; the journal itself is repaired on open (harness.journal).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalStorage

from harness.errors import UserError
from harness.journal import SafeJournalFileBackend
from harness.layout import run_dir

JOURNAL_PREFIX = "journal:///"
JOURNAL_NAME = "optuna.journal"
# Heartbeats (RDB storages only): a trial whose worker stopped beating for GRACE seconds is failed
# and retried with the same parameters. Generous on purpose: too short a grace period fails live
# trials. The environment may shorten them (tests do).
HEARTBEAT_SECONDS = int(os.environ.get("HARNESS_HEARTBEAT_SECONDS", 60))
GRACE_SECONDS = int(os.environ.get("HARNESS_HEARTBEAT_GRACE_SECONDS", 600))
MAX_RETRIES = 2


def is_rdb(url: str) -> bool:
    """Whether ``url`` names a database storage rather than a journal file."""
    return not (url.startswith(JOURNAL_PREFIX) or url.endswith(".journal"))


def journal_url(path: str | Path) -> str:
    """The storage URL of the journal file at ``path``."""
    return JOURNAL_PREFIX + str(Path(path).resolve()).lstrip("/")


def journal_path(url: str) -> Path:
    """The file of a ``journal:///path`` URL (or of a plain path ending in .journal)."""
    if url.startswith(JOURNAL_PREFIX):
        return Path("/" + url[len(JOURNAL_PREFIX) :].lstrip("/"))
    return Path(url)


def study_storage_url(results_dir: str | Path, folder: str, strategy: str, seed: int) -> str:
    """The default storage of one study: a journal beside its records,
    ``<results>/<folder>/<strategy>/seed-<seed>/optuna.journal``."""
    return journal_url(run_dir(results_dir, folder, strategy, seed) / JOURNAL_NAME)


def legacy_journal_url(results_dir: Path, experiment: str) -> str:
    """The journal every study of an experiment shared before studies had their own (legacy: read
    through resolve_storage_url so older results resume where they are)."""
    return journal_url(Path(results_dir) / experiment / JOURNAL_NAME)


def resolve_storage_url(
    results_dir: str | Path, folder: str, strategy: str, seed: int, study: str
) -> tuple[str, str | None]:
    """The default storage URL for ``study`` and a note to print (or None).

    The study's own journal, unless only the experiment's shared journal of earlier versions
    holds the study: then that one, so a study is never silently restarted in a new file."""
    own = study_storage_url(results_dir, folder, strategy, seed)
    legacy_path = Path(results_dir) / folder / JOURNAL_NAME
    if journal_path(own).exists() or not legacy_path.is_file():
        return own, None
    legacy = legacy_journal_url(Path(results_dir), folder)
    try:
        optuna.load_study(study_name=study, storage=open_storage(legacy))
    except KeyError:
        return own, None
    note = (
        f"storage {legacy_path}: study {study} continues in the experiment's shared journal of "
        "earlier versions (new studies get their own journal beside their records)"
    )
    return legacy, note


def open_storage(url: str) -> BaseStorage:
    """``journal:///path`` (or a path ending in .journal) or any URL Optuna's RDB storage accepts.

    A journal whose last record was torn (a process killed mid-write, a full disk) is repaired
    first: the torn bytes are set aside in a backup and one line on stderr says so."""
    if not is_rdb(url):
        return _open_journal(url)
    if "://" not in url:
        raise UserError(
            f"storage {url!r}: not a storage URL; "
            "use journal:///path, sqlite:///path.db or postgresql://..."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", optuna.exceptions.ExperimentalWarning
            )  # heartbeats: stable since v2.8
            return optuna.storages.RDBStorage(
                url,
                skip_compatibility_check=False,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=MAX_RETRIES
                ),
            )
    except ImportError as exc:
        hint = " (pip install -e '.[postgres]')" if url.startswith("postgresql") else ""
        raise UserError(f"storage {url}: missing database driver{hint} ({exc})") from None
    except Exception as exc:  # SQLAlchemy raises many kinds for bad URLs and unreachable servers
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"storage {url}: cannot connect ({first_line[:200]})") from None


def _open_journal(url: str) -> JournalStorage:
    path = journal_path(url)
    if path.is_dir():
        raise UserError(f"storage {path}: is a folder, not a journal file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = SafeJournalFileBackend(str(path))
    except OSError as exc:
        raise UserError(
            f"storage {url}: cannot open the journal file ({exc.strerror or exc})"
        ) from None
    if backend.repair_message:
        print(backend.repair_message, file=sys.stderr)
    try:
        return JournalStorage(backend)
    except UserError:
        raise
    except Exception as exc:  # a record Optuna cannot replay (another version's, edited by hand)
        raise UserError(
            f"storage {path}: a record cannot be replayed ({type(exc).__name__}: "
            f"{str(exc)[:200]}); move the file aside to start the study afresh"
        ) from None


@contextmanager
def storage_errors() -> Iterator[None]:
    """Around ``study.optimize``: a storage write that fails while Optuna finishes a trial
    surfaces as Optuna's ``AssertionError("Should not reach.")``, the write error only in its
    context. Re-raise the harness's own error (one line: what failed, how to go on) instead."""
    try:
        yield
    except Exception as exc:
        cause = _user_error_in(exc)
        if cause is not None and cause is not exc:
            raise cause from None
        raise


def _user_error_in(exc: BaseException | None) -> UserError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
