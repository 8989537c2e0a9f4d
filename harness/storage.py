"""Optuna storages: an embedded journal file by default, any Optuna storage URL on request.

The default is Optuna's journal file: a few ms per trial (SQLite costs 50-200 ms in its
many commits, shared/OPTUNA_NOTES.md), safe for several processes on one machine, and
readable by optuna-dashboard (`optuna-dashboard results/<experiment>/optuna.journal`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage

from harness.errors import UserError

JOURNAL_PREFIX = "journal:///"
# Heartbeats (RDB storages only): a trial whose worker stopped beating for GRACE seconds is failed
# and retried with the same parameters. Generous on purpose: too short a grace period fails live
# trials. The environment may shorten them (tests do).
HEARTBEAT_SECONDS = int(os.environ.get("HARNESS_HEARTBEAT_SECONDS", 60))
GRACE_SECONDS = int(os.environ.get("HARNESS_HEARTBEAT_GRACE_SECONDS", 600))
MAX_RETRIES = 2


def is_rdb(url: str) -> bool:
    return not (url.startswith(JOURNAL_PREFIX) or url.endswith(".journal"))


def default_storage_url(results_dir: Path, experiment: str) -> str:
    return JOURNAL_PREFIX + str((Path(results_dir) / experiment / "optuna.journal").resolve())


def open_storage(url: str) -> BaseStorage:
    """``journal:///path`` (or a path ending in .journal) or any URL Optuna's RDB storage accepts."""
    if url.startswith(JOURNAL_PREFIX) or url.endswith(".journal"):
        path = Path(url[len(JOURNAL_PREFIX) - 1 :] if url.startswith(JOURNAL_PREFIX) else url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise UserError(
                f"storage {url}: cannot open the journal file ({exc.strerror or exc})"
            ) from None
    if "://" not in url:
        raise UserError(
            f"storage {url!r}: not a storage URL; use journal:///path, sqlite:///path.db or postgresql://..."
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
