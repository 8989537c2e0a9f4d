"""v4's trained weights, for the runs whose trials start from them (``<strategy>.v4w``).

v4 is trained once per experiment folder, to convergence the way `final` trains (early
stopping on validation), and saved as ``<results>/<experiment>/v4-weights.pt`` with the
experiment's fingerprint: every .v4w run of the comparison, and every local worker of one,
starts from the same file (a worker on another machine trains its own copy), and a changed
experiment trains it again. The training is not charged to
any run's budget: the team's v4 weights exist before the night."""

from __future__ import annotations

import fcntl
from pathlib import Path

from harness.checkpoints import read_checkpoint, save_checkpoint
from harness.climb import train_to_convergence
from harness.defaults import FINAL_MAX_EPOCHS, FINAL_PATIENCE
from harness.errors import UserError
from harness.fingerprint import fingerprint, fingerprint_hash

V4_WEIGHTS_FILE = "v4-weights.pt"
V4_WEIGHTS_SEED = 8_999_999  # apart from the retrains (9,000,000 + k) and the trials of seeds < 89


def v4_state(experiment, data, device, folder: Path) -> dict:
    """v4's trained weights for ``experiment`` (its results ``folder``): read, or trained and
    saved first. Several processes asking at once train it once (a lock beside the file)."""
    path = Path(folder) / V4_WEIGHTS_FILE
    identity = fingerprint_hash(fingerprint(experiment))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = read_checkpoint(path)
        if saved is not None and saved.get("fingerprint") == identity:
            return saved["state_dict"]
        if saved is not None:
            print(f"note: {path} was trained for another definition of {experiment.name}")
        saved = _train(experiment, data, device, identity)
        save_checkpoint(path, saved, " v4's weights")
    stopped = "early-stopped" if saved["epochs"] < FINAL_MAX_EPOCHS else "the most `final` trains"
    print(
        f"v4 weights: v4 trained for {saved['epochs']} epochs ({stopped}; validation MAE "
        f"{saved['val_mae']:.4f}), saved to {path} for every .v4w run"
    )
    return saved["state_dict"]


def _train(experiment, data, device, identity: str) -> dict:
    trainer, history, evals = train_to_convergence(
        experiment,
        data,
        experiment.base_config(),
        seed=V4_WEIGHTS_SEED,
        device=device,
        max_epochs=FINAL_MAX_EPOCHS,
        patience=FINAL_PATIENCE,
    )
    if not evals:
        raise UserError(
            f"v4 weights: v4 diverged at epoch {history.diverged_at_epoch} "
            f"({history.diverged_reason or 'non-finite loss'}); no run can start from it"
        )
    return {
        "state_dict": trainer.cpu_state_dict(),
        "fingerprint": identity,
        "epochs": len(evals),
        "val_mae": min(e.metrics["mae"] for e in evals),
    }
