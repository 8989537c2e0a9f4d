"""The command line: parses arguments and calls functions that never read sys.argv."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
from pathlib import Path

from harness.defaults import (
    CONFIRM,
    DATA_DAYS,
    DATA_STATIONS,
    DEFAULT_EXPERIMENT,
    FINAL_MAX_EPOCHS,
    FINAL_PATIENCE,
    FINAL_SEEDS,
    FINAL_TOP_K,
    MAX_SEEDS,
    MIN_PROBE_SAMPLES,
    NIGHT_EXPERIMENT,
    NIGHT_HOURS,
    NOISE_CONFIGS,
    PROBE_SAMPLES,
    RECORD_REPEATS,
    REEVAL_SEEDS,
    RESULTS_DIR,
    SCREEN_SEEDS,
    SURROGATE_REFITS,
)
from harness.errors import UserError
from harness.sidefiles import folder_problem
from harness.signals import stops_like_ctrl_c
from harness.team import NIGHT_TRIAL_COUNTS, TARGET_MARGIN, TEAM_DEFAULT

# Every option that takes a count or an amount, by its dest: (requirement, test, largest
# accepted). One table for every command, checked before any work starts (validate_args); the
# largest values are far above any real use and keep a typo (10**30) from reaching numpy.
_INT_RULES = {
    "trials": (">= 1", lambda v: v >= 1, 1_000_000),
    "workers": (">= 1", lambda v: v >= 1, None),  # capped at the CPU count instead
    "seeds": (">= 1", lambda v: v >= 1, 10_000),
    "noise_seeds": (
        "0 (off) or >= 2 (a spread needs two seeds)",
        lambda v: v == 0 or v >= 2,
        100,
    ),
    "noise_configs": (">= 1", lambda v: v >= 1, 1_000),
    "audit": (">= 0", lambda v: v >= 0, 10_000),
    "configs": (">= 4", lambda v: v >= 4, 100_000),
    "repeats": (">= 1", lambda v: v >= 1, 100),
    "top_k": (">= 1", lambda v: v >= 1, 100),
    "max_epochs": (">= 1", lambda v: v >= 1, 10_000),
    "patience": (">= 1", lambda v: v >= 1, 10_000),
    "max_params": (">= 1", lambda v: v >= 1, 10**10),
    "reeval_seeds": (">= 0", lambda v: v >= 0, 100),
    "converge": (
        "0 (off) or >= 3 (a rank correlation needs three)",
        lambda v: v == 0 or v >= 3,
        10_000,
    ),
    "probe_samples": (
        f">= {MIN_PROBE_SAMPLES:,} (fewer time start-up, not training)",
        lambda v: v >= MIN_PROBE_SAMPLES,
        10**8,
    ),
    "screen_seeds": ("2..1000", lambda v: 2 <= v, 1000),
    "confirm": ("1 or 2 (a family of at most three tests)", lambda v: v in (1, 2), 2),
    "max_seeds": ("2..200", lambda v: v >= 2, 200),
}
_FLOAT_RULES = {
    "timeout_minutes": ("a finite number > 0", lambda v: v > 0),
    "device_factor": ("a finite number > 0", lambda v: v > 0),
    "max_trial_minutes": ("a finite number > 0", lambda v: v > 0),
    "hours": ("a finite number > 0", lambda v: v > 0),
    "target_margin": ("a share in [0, 1)", lambda v: 0 <= v < 1),
}
# Commands whose --experiment names a folder under --results, not an experiment file.
_FOLDER_EXPERIMENT = ("report", "plan")


def _common_options(
    parser: argparse.ArgumentParser,
    storage: bool = False,
    device: bool = False,
    progress: bool = False,
) -> None:
    """The options several subcommands share, declared once."""
    if storage:
        parser.add_argument(
            "--storage",
            help="any Optuna storage URL (default: journal file under results/<experiment>/)",
        )
    if device:
        parser.add_argument("--device", help="auto, cpu or cuda[:N] (overrides the experiment's)")
    parser.add_argument(
        "--results", default=RESULTS_DIR, help=f"results folder (default ./{RESULTS_DIR})"
    )
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _budget_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """How a run's budget is counted, and whether it starts from the defaults (v4)."""
    parser.add_argument(
        "--budget-unit",
        choices=("trials", "compute"),
        default=unit,
        help="trials: the budget counts trials; compute: it counts the training FLOPs of that "
        f"many full-ladder v4 trials, so pruning buys more trials (default {unit})",
    )
    parser.add_argument(
        "--no-warm-start",
        action="store_true",
        help="do not evaluate the experiment's defaults (v4) as the first trial",
    )
    parser.add_argument(
        "--v4-weights",
        action="store_true",
        help="start every trial from v4's trained weights where the shapes match (runs named "
        "<strategy>.v4w; v4 is trained once per experiment and saved as v4-weights.pt)",
    )


def _mlflow_option(parser: argparse.ArgumentParser) -> None:
    """The --mlflow option: log to MLflow, optionally at a tracking URI."""
    parser.add_argument(
        "--mlflow",
        nargs="?",
        const="default",
        metavar="URI",
        help="log to MLflow (default store: sqlite under results/; "
        "needs pip install -e '.[mlflow]')",
    )


def _experiment_option(parser: argparse.ArgumentParser, help: str) -> None:
    """The --experiment option (default DEFAULT_EXPERIMENT)."""
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help=help)


def _budget_override_options(parser: argparse.ArgumentParser, per: str) -> None:
    """--trials and --timeout-minutes: the budget, overriding the experiment's."""
    parser.add_argument(
        "--trials", type=int, help=f"trial budget{per} (overrides the experiment's)"
    )
    parser.add_argument(
        "--timeout-minutes",
        type=float,
        help=f"wall-clock budget{per} (overrides the experiment's)",
    )


def _subcommand(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    """Add subcommand ``name`` that runs ``func(args)``; returns its parser."""
    parser = sub.add_parser(name, help=help)
    parser.set_defaults(func=func)
    return parser


def _add_data(sub) -> None:
    """The `data` subcommand: describe a data set."""
    data = _subcommand(
        sub, "data", _cmd_data, "describe a data set: splits, missing share, persistence MAE"
    )
    data.add_argument(
        "--stations",
        type=int,
        default=DATA_STATIONS,
        help=f"synthetic stations (default {DATA_STATIONS}; full scale 1498)",
    )
    data.add_argument(
        "--days", type=int, default=DATA_DAYS, help=f"synthetic days (default {DATA_DAYS})"
    )
    data.add_argument("--seed", type=int, default=0, help="synthetic generator seed")
    data.add_argument(
        "--source",
        help="a tidy CSV/Parquet file, or a directory of GBFS JSON or Paris CSV snapshots",
    )
    data.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _add_run(sub) -> None:
    """The `run` subcommand: one strategy on an experiment."""
    run = _subcommand(
        sub, "run", _cmd_run, "run one strategy on an experiment (resumes if run before)"
    )
    run.add_argument(
        "--strategy",
        help="a registered strategy (see 'list'); default: the experiment's [run] strategy",
    )
    _experiment_option(
        run, f"a name in experiments/ or a path to a .toml file (default {DEFAULT_EXPERIMENT})"
    )
    run.add_argument("--seed", type=int, default=0, help="strategy seed (default 0)")
    _budget_override_options(run, "")
    _int_option(
        run, "--workers", 1, "worker processes sharing the study on this machine (default 1)"
    )
    _backend_option(
        run,
        "replay: the surrogate fitted by 'record', simulated clock, "
        "records under results/<experiment>.replay/",
    )
    _budget_options(run, "trials")
    _common_options(run, storage=True, device=True, progress=True)
    _mlflow_option(run)


def _add_worker(sub) -> None:
    """The `worker` subcommand: join an existing study."""
    work = _subcommand(
        sub,
        "worker",
        _cmd_worker,
        "join an existing study (from any machine) and train until its budget is met",
    )
    work.add_argument(
        "--storage", required=True, help="the study's storage URL, e.g. postgresql://user@host/db"
    )
    work.add_argument(
        "--study", required=True, help="the study name, <experiment>.<strategy>.seed-<n>"
    )
    work.add_argument("--device", help="auto, cpu or cuda[:N]")
    work.add_argument(
        "--results",
        default=RESULTS_DIR,
        help=f"where this worker writes its records (default ./{RESULTS_DIR})",
    )
    work.add_argument("--no-progress", action="store_true")


def _add_compare(sub) -> None:
    """The `compare` subcommand: several strategies x seeds under one budget."""
    comp = _subcommand(
        sub,
        "compare",
        _cmd_compare,
        "run several strategies x seeds under the same budget (resumable)",
    )
    _experiment_option(comp, "a name in experiments/ or a path to a .toml file")
    comp.add_argument(
        "--strategies", help="comma-separated strategy names (default: all registered)"
    )
    comp.add_argument(
        "--seeds", type=int, help="number of seeds 0..N-1 (default: the experiment's seeds)"
    )
    _budget_override_options(comp, " per run")
    _int_option(
        comp, "--noise-seeds", 0, "retrain the best configurations with N seeds (noise floor)"
    )
    _int_option(
        comp,
        "--noise-configs",
        NOISE_CONFIGS,
        f"how many best configurations to retrain (default {NOISE_CONFIGS})",
    )
    _int_option(comp, "--audit", 0, "finish K pruned trials at full fidelity (false prunes)")
    _int_option(comp, "--workers", 1, "worker processes per run (default 1)")
    _backend_option(comp, "real training, or the replay surrogate")
    _budget_options(comp, "compute")
    _int_option(
        comp,
        "--reeval-seeds",
        REEVAL_SEEDS,
        "retrain each run's incumbent with N fresh seeds; strategies are ranked on it "
        f"(default {REEVAL_SEEDS}, 0: rank on the recorded best)",
    )
    comp.add_argument(
        "--converge",
        type=int,
        default=0,
        metavar="K",
        help="train K configurations to early-stopped convergence: does the top rung rank "
        "like convergence? (horizon trust; default 0)",
    )
    comp.add_argument(
        "--two-stage",
        action="store_true",
        help="a verdict with power: record (if needed), screen every strategy on the replay, "
        f"then confirm the screen's best against {TEAM_DEFAULT} in real paired runs, the seeds "
        "sized by a simulated power analysis (--strategies and --seeds are not used)",
    )
    _int_option(
        comp,
        "--screen-seeds",
        SCREEN_SEEDS,
        f"--two-stage: replayed seeds per strategy ({SCREEN_SEEDS})",
    )
    _int_option(
        comp, "--confirm", CONFIRM, f"--two-stage: strategies confirmed, 1 or 2 (default {CONFIRM})"
    )
    _int_option(
        comp,
        "--max-seeds",
        MAX_SEEDS,
        f"--two-stage: most real seeds the power may ask ({MAX_SEEDS})",
    )
    _common_options(comp, storage=True, device=True, progress=True)
    _mlflow_option(comp)


def _backend_option(parser: argparse.ArgumentParser, help: str) -> None:
    """--backend: real training (default) or the replay surrogate."""
    parser.add_argument("--backend", default="real", choices=("real", "replay"), help=help)


def _int_option(parser: argparse.ArgumentParser, flag: str, default: int, help: str) -> None:
    """An integer option with a default."""
    parser.add_argument(flag, type=int, default=default, help=help)


def _add_tunability(sub) -> None:
    """The `tunability` subcommand: which parameters to search, and how many, on the replay."""
    tun = _subcommand(
        sub,
        "tunability",
        _cmd_tunability,
        "which parameters are worth searching, and how many, at the night's trial counts "
        "(replayed on the surrogate 'record' fitted)",
    )
    _experiment_option(tun, "a name in experiments/ or a path to a .toml file (default quick)")
    tun.add_argument(
        "--strategy", default=None, help="the strategy that searches (default: the team's default)"
    )
    _int_option(tun, "--seeds", 50, "replayed seeds per space (default 50; at least 3)")
    tun.add_argument(
        "--budgets",
        default=",".join(map(str, NIGHT_TRIAL_COUNTS)),
        help="trial counts at which incumbents are scored (default 40,60,70)",
    )
    _common_options(tun, progress=True)


def _cmd_tunability(args: argparse.Namespace) -> int:
    from harness.analysis.analyze import TUNABILITY_FILE
    from harness.experiment import load_experiment
    from harness.replay.prepare import load_surrogate
    from harness.tunability import Setting, check_strategy, measure, summary_lines
    from strategies import get_strategy
    from strategies.registry import COLD_SUFFIX, strategy_problem

    if args.seeds < 3:
        raise UserError(f"--seeds must be >= 3 (a paired interval needs three), got {args.seeds}")
    budgets = _budgets(args.budgets)
    name = args.strategy or TEAM_DEFAULT
    if strategy_problem(name.removesuffix(COLD_SUFFIX)):
        raise UserError(f"--strategy: {strategy_problem(name.removesuffix(COLD_SUFFIX))}")
    strategy = get_strategy(name)
    check_strategy(strategy)
    experiment = load_experiment(args.experiment)
    surrogate = load_surrogate(experiment, args.results)
    setting = Setting(surrogate, experiment.space, experiment.ladder, strategy, budgets)
    result = measure(setting, args.seeds, progress=not args.no_progress)
    result["surrogate"] = {k: surrogate.evidence.get(k) for k in ("chosen", "fitted_on")}
    return _write_measurement(args.results, experiment.name, TUNABILITY_FILE, result, summary_lines)


def _write_measurement(results: str, experiment: str, name: str, result: dict, lines) -> int:
    """Write a command's measurement as ``name`` in the experiment's folder, tagged with the
    experiment (its readers check it), and print ``lines(result)`` and where it went."""
    from harness.sidefiles import write_json_atomic

    result["experiment"] = experiment
    path = Path(results) / experiment / name
    write_json_atomic(path, result)
    for line in lines(result):
        print(line)
    print(f"written: {path}")
    return 0


def _add_architecture(sub) -> None:
    """The `architecture` subcommand: the brief's architecture questions, from recorded curves."""
    arch = _subcommand(
        sub,
        "architecture",
        _cmd_architecture,
        "the brief's architecture questions (layers, widths, size against depth, learning rate "
        "against batch size, clipping, dense, dropout) from record's and random search's curves",
    )
    _experiment_option(arch, "a name in experiments/ or a path to a .toml file")
    _int_option(
        arch, "--refits", SURROGATE_REFITS,
        f"surrogate refits behind its intervals (default {SURROGATE_REFITS}; at least 5)",
    )  # fmt: skip
    _common_options(arch, progress=True)


def _cmd_architecture(args: argparse.Namespace) -> int:
    from harness.analysis.analyze import ARCHITECTURE_FILE
    from harness.architecture import measure, summary_lines
    from harness.experiment import load_experiment
    from harness.replay.prepare import learning_curves

    experiment = load_experiment(args.experiment)
    if args.refits < 5:
        raise UserError(f"--refits must be >= 5 (an interval needs a spread), got {args.refits}")
    curves = learning_curves(args.results, experiment.name)
    result = measure(experiment.space, curves, refits=args.refits, progress=not args.no_progress)
    return _write_measurement(
        args.results, experiment.name, ARCHITECTURE_FILE, result, summary_lines
    )


def _budgets(text: str) -> tuple[int, ...]:
    """--budgets: distinct trial counts, each 2..10,000, ascending."""
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise UserError(f"--budgets must be comma-separated whole numbers, got {text!r}") from None
    if not values or values[0] < 2 or values[-1] > 10_000:
        raise UserError(f"--budgets must be trial counts in 2..10,000, got {text!r}")
    return tuple(values)


def _add_record(sub) -> None:
    """The `record` subcommand: the learning curves the replay surrogate is fitted to."""
    rec = _subcommand(
        sub,
        "record",
        _cmd_record,
        "learning curves of Sobol configurations (+ v4), every rung, repeated: the replay data",
    )
    _experiment_option(rec, "a name in experiments/ or a path to a .toml file")
    rec.add_argument(
        "--configs",
        type=int,
        help="Sobol configurations, plus v4 (default: 8 per searched parameter, at least 32, "
        "rounded up to a power of 2)",
    )
    _int_option(
        rec,
        "--repeats",
        RECORD_REPEATS,
        f"training seeds per configuration (default {RECORD_REPEATS})",
    )
    _int_option(rec, "--workers", 1, "worker processes (default 1)")
    _common_options(rec, storage=True, device=True, progress=True)


def _add_report(sub) -> None:
    """The `report` subcommand: analysis and write-up from recorded runs."""
    rep = _subcommand(
        sub,
        "report",
        _cmd_report,
        "analysis, plots and the write-up from recorded runs (no training)",
    )
    _experiment_option(rep, "experiment name (its folder under results/)")
    rep.add_argument(
        "--target-margin",
        type=float,
        default=TARGET_MARGIN,
        help=f"the MAE target is v4's minus this share, fixed before the runs (default "
        f"{TARGET_MARGIN})",
    )
    rep.add_argument(
        "--no-plots",
        action="store_true",
        help="the write-up without figures, drawing nothing (a few times faster); an earlier "
        "report's figures leave plots/",
    )
    _common_options(rep, progress=False)
    _mlflow_option(rep)


def _add_final(sub) -> None:
    """The `final` subcommand: retrain the best configuration and v4, test once."""
    fin = _subcommand(
        sub,
        "final",
        _cmd_final,
        "retrain the best configuration and v4 with early stopping; test once",
    )
    _experiment_option(fin, "the compared experiment")
    fin.add_argument(
        "--seeds", type=int, default=FINAL_SEEDS, help=f"training seeds (default {FINAL_SEEDS})"
    )
    _int_option(
        fin,
        "--top-k",
        FINAL_TOP_K,
        "retrain the K best configurations, keep the best on validation",
    )
    fin.add_argument("--max-epochs", type=int, default=FINAL_MAX_EPOCHS)
    fin.add_argument("--patience", type=int, default=FINAL_PATIENCE)
    fin.add_argument(
        "--v4-weights",
        action="store_true",
        help="also train the recommended configuration from v4's trained weights on the same "
        "seeds, and compare the two starts at convergence",
    )
    _common_options(fin, device=True, progress=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subcommand per job, each bound to its _cmd_ function."""
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data(sub)
    _add_run(sub)
    _add_worker(sub)
    _add_compare(sub)
    _add_record(sub)
    _add_tunability(sub)
    _add_architecture(sub)
    _add_report(sub)

    pl = sub.add_parser(
        "plan",
        help=f"cost model, projections for a {NIGHT_HOURS[0]}-{NIGHT_HOURS[-1]} h night, and the "
        "overnight experiment file",
    )
    _experiment_option(pl, "the compared experiment (its folder under results/)")
    pl.add_argument(
        "--night",
        help=f"the night's experiment, the one the plan scales to (name or .toml path; default "
        f"{NIGHT_EXPERIMENT})",
    )
    pl.add_argument("--target", dest=_OLD_NIGHT, help=argparse.SUPPRESS)  # before 2026-12
    pl.add_argument(
        "--hours",
        type=float,
        default=float(NIGHT_HOURS[1]),
        help=f"length of the night, {NIGHT_HOURS[0]}-{NIGHT_HOURS[-1]} (default {NIGHT_HOURS[1]})",
    )
    pl.add_argument(
        "--calibrate",
        action="store_true",
        help="time a few training steps here to scale the recorded costs",
    )
    pl.add_argument(
        "--device-factor",
        type=float,
        help="tonight's machine's time per recorded second (e.g. 0.1)",
    )
    pl.add_argument(
        "--max-trial-minutes",
        type=float,
        help="cost ceiling: predicted training minutes per trial tonight",
    )
    pl.add_argument("--max-params", type=int, help="cost ceiling: model parameters")
    pl.add_argument(
        "--probe",
        action="store_true",
        help="size the night from real rungs of the target's data timed on this machine "
        "(run it on the night's machine)",
    )
    pl.add_argument(
        "--probe-samples",
        type=int,
        default=PROBE_SAMPLES,
        help=f"training samples per probed configuration (default {PROBE_SAMPLES}, at least "
        f"{MIN_PROBE_SAMPLES})",
    )
    _common_options(pl, device=True, progress=False)
    pl.set_defaults(func=_cmd_plan)

    _add_final(sub)
    sub.add_parser("list", help="list strategies and experiments").set_defaults(func=_cmd_list)
    return parser


def _cmd_data(args: argparse.Namespace) -> int:
    from harness.datasets import DataSpec, describe, format_description, load_data

    info = describe(load_data(DataSpec(args.stations, args.days, args.seed, args.source)))
    print(json.dumps(info) if args.json else format_description(info))
    return 0


def _run_settings(args: argparse.Namespace) -> dict:
    """The options `run` and `compare` share, as RunOptions/CompareOptions keyword arguments."""
    return dict(
        results_dir=args.results,
        storage=args.storage,
        n_trials=args.trials,
        timeout_minutes=args.timeout_minutes,
        device=args.device,
        progress=not args.no_progress,
        workers=args.workers,
        backend=args.backend,
        budget_unit=args.budget_unit,
        warm_start=not args.no_warm_start,
        v4_weights=args.v4_weights,
    )


def _logger(args: argparse.Namespace, experiment: str):
    if not getattr(args, "mlflow", None):
        return None
    from harness.tracking import MlflowLogger

    return MlflowLogger(args.mlflow, experiment, args.results)


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.experiment import load_experiment
    from harness.run import RunOptions, run_strategy
    from harness.summary import format_summary

    experiment = load_experiment(args.experiment)
    opts = RunOptions(strategy=args.strategy, seed=args.seed, **_run_settings(args))
    logger = _logger(args, experiment.name)  # before training: a missing extra fails fast
    summary = run_strategy(experiment, opts)
    if logger:
        logged = logger.log_run(Path(summary["records"]))
        print(f"mlflow        {logged} trials logged to {logger.uri}")
    strategy = summary["strategy"]  # with its twin's suffix (.cold, .v4w)
    print(
        f"{experiment.name} / {strategy} / seed {args.seed}  (study {summary['study']}, "
        f"device {summary['device']})"
    )
    print(format_summary(summary))
    print(f"records       {summary['records']}")
    return _exit_code(summary)


def _exit_code(summary: dict) -> int:
    """130 when interrupted; 1 when no trial finished (the reasons on stderr); else 0."""
    if summary["interrupted"]:
        print(
            "interrupted   finished trials are kept; run the same command again to continue",
            file=sys.stderr,
        )
        return 130
    if summary["complete"] + summary["pruned"] == 0:
        reasons = "; ".join(f"{n} x {r}" for r, n in summary.get("fail_reasons", {}).items())
        print(f"error: no trial finished ({reasons or 'none ran'})", file=sys.stderr)
        return 1
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from harness.experiment import load_experiment
    from harness.record import record
    from harness.replay.prepare import load_surrogate

    experiment = load_experiment(args.experiment)
    summary = record(
        experiment,
        configs=args.configs,
        repeats=args.repeats,
        results_dir=args.results,
        storage=args.storage,
        device=args.device,
        progress=not args.no_progress,
        workers=args.workers,
    )
    print(f"recorded {summary['trials']} learning curves under {summary['records']}")
    print(surrogate_line(load_surrogate(experiment, args.results).evidence))
    return 0


def surrogate_line(ev: dict) -> str:
    """One line: each candidate's held-out top-rung Spearman and error, and the chosen one."""
    from harness.replay.learners import CANDIDATES

    chosen = ev[ev["chosen"]]
    return (
        "surrogate, folds grouped by configuration (top-rung MAE): "
        + "; ".join(f"{k} {ev[k]['spearman']:.2f}" for k in CANDIDATES)
        + f" -> {ev['chosen']} (Spearman {chosen['spearman']:.2f}, 95% interval "
        f"{chosen['spearman_low']:.2f}..{chosen['spearman_high']:.2f}, error "
        f"{chosen['mae']:.3f} bikes; {ev['curves']} curves of {ev['configs']} configurations)"
    )


def _cmd_worker(args: argparse.Namespace) -> int:
    from harness.run import join_study
    from harness.summary import format_summary
    from harness.workers import stop_with_coordinator

    stop_with_coordinator()
    summary = join_study(
        args.storage, args.study, args.results, args.device, progress=not args.no_progress
    )
    print(f"worker done on {args.study}")
    print(format_summary(summary))
    # Not _exit_code: the study's budget may have been met by other workers before this one.
    return 130 if summary["interrupted"] else 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.compare import CompareOptions, compare
    from harness.experiment import load_experiment
    from strategies import STRATEGIES
    from strategies.registry import RECORD_PREFIX

    experiment = load_experiment(args.experiment)
    strategies = (
        tuple(s.strip() for s in args.strategies.split(","))
        if args.strategies
        else tuple(STRATEGIES)
    )
    logger = _logger(args, experiment.name)
    options = CompareOptions(
        strategies=strategies,
        seeds=tuple(range(args.seeds)) if args.seeds else None,
        noise_configs=args.noise_configs,
        noise_seeds=args.noise_seeds,
        audit=args.audit,
        reeval_seeds=args.reeval_seeds,
        converge=args.converge,
        **_run_settings(args),
    )
    if args.two_stage:
        return _two_stage(experiment, options, args)
    out = compare(experiment, options)
    if logger:
        logged = sum(
            logger.log_run(p.parent)
            for p in sorted(Path(out["results"]).glob("*/seed-*/metadata.json"))
            if not p.parent.parent.name.startswith(RECORD_PREFIX)
        )
        print(f"mlflow: {logged} trials logged to {logger.uri}")
    print(
        f"{out['runs']} runs recorded under {out['results']}; "
        f"next: python -m harness report --experiment {Path(out['results']).name}"
    )
    return 0


def _two_stage(experiment, options, args: argparse.Namespace) -> int:
    """compare --two-stage: screen on the replay, confirm in real runs; one summary line."""
    from harness.backends import get_backend
    from harness.two_stage import TwoStageOptions, two_stage

    if get_backend(options.backend).replayed:
        raise UserError("--two-stage screens on the replay itself: leave --backend out")
    if not options.reeval_seeds:
        raise UserError("--two-stage ranks re-evaluated incumbents: --reeval-seeds must be >= 1")
    plan = two_stage(
        experiment,
        options,
        TwoStageOptions(
            screen_seeds=args.screen_seeds, confirm=args.confirm, max_seeds=args.max_seeds
        ),
    )
    took = plan["wall_seconds"]
    print(
        f"two-stage done in {took['total'] / 60:.1f} min (record {took['record'] / 60:.1f}, "
        f"screen {took['screen'] / 60:.1f}, confirmation {took['confirm'] / 60:.1f}); next: "
        f"python -m harness report --experiment {experiment.name}"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.analysis.analyze import analyze
    from harness.analysis.report import write_report

    logger = _logger(args, args.experiment)
    a = analyze(args.results, args.experiment, args.target_margin)
    path = write_report(a, Path(args.results) / args.experiment, plots=not args.no_plots)
    if logger:
        run_id = logger.log_report(path.parent, plots=not args.no_plots)
        what = "report" if args.no_plots else "report and plots"
        print(f"mlflow: {what} logged as run {run_id} in {logger.uri}")
    print(a.ranking[["rank", "strategy", "median", "seeds"]].to_string(index=False))
    print(f"\nverdict: {a.choice_named} ({a.choice_reason})")
    for line in a.cannot_tell:
        print(f"cannot tell: {line}")
    print(f"report: {path} and {path.with_suffix('.html')}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.analysis.analyze import analyze
    from harness.plan.device_factor import calibrate_device_factor
    from harness.plan.make import make_plan

    if args.probe and (args.calibrate or args.device_factor):
        raise UserError("--probe measures this machine: leave out --calibrate and --device-factor")
    a = analyze(args.results, args.experiment)
    factor = args.device_factor or (calibrate_device_factor(a) if args.calibrate else 1.0)
    plan = make_plan(
        a,
        Path(args.results) / args.experiment,
        night_name=args.night or NIGHT_EXPERIMENT,
        hours=args.hours,
        device_factor=factor,
        max_trial_minutes=args.max_trial_minutes,
        max_params=args.max_params,
        probe_samples=args.probe_samples if args.probe else None,
        device=args.device,
    )
    print(plan["summary"])
    import pandas as pd

    print(pd.DataFrame(plan["projections"]).to_string(index=False))
    return 0


def _cmd_final(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.analysis.analyze import analyze
    from harness.experiment import load_experiment
    from harness.final import final_check

    experiment = load_experiment(args.experiment)
    a = analyze(args.results, experiment.name)
    result = final_check(
        a,
        experiment,
        Path(args.results) / experiment.name,
        seeds=args.seeds,
        top_k=args.top_k,
        max_epochs=args.max_epochs,
        patience=args.patience,
        device=args.device or experiment.device,
        progress=not args.no_progress,
        v4_weights=args.v4_weights,
    )
    print(result["summary"])
    import pandas as pd

    print(pd.DataFrame(result["table"]).to_string(index=False))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from harness.experiment import list_experiments, load_experiment
    from strategies import STRATEGIES

    print("strategies:")
    for s in STRATEGIES.values():
        print(f"  {s.name:<14} {s.summary}")
        print(
            textwrap.fill(
                s.rationale, width=100, initial_indent=" " * 17, subsequent_indent=" " * 17
            )
        )
    print("experiments:")
    for path in list_experiments():
        e = load_experiment(str(path))
        print(f"  {path.stem:<16} {e.description}")
    return 0


def validate_args(args: argparse.Namespace) -> None:
    """Check every option before any work: a bad one is a UserError naming it."""
    from harness.experiment import data_problem, device_problem, seed_problem

    given = {k: v for k, v in vars(args).items() if v is not None}
    for dest, value in given.items():
        _check_amount(dest, value)
    cpus = os.cpu_count() or 1
    if given.get("workers", 0) > cpus:  # more would only share the same cores
        print(
            f"note: --workers {args.workers} is more than this machine's {cpus} CPUs; using {cpus}",
            file=sys.stderr,
        )
        args.workers = cpus
    if "seed" in given and seed_problem(args.seed):
        raise UserError(f"--seed {seed_problem(args.seed)}")
    if "device" in given and device_problem(args.device):
        raise UserError(f"--device {device_problem(args.device)}")
    if args.command == "data":
        problem = data_problem(args.stations, args.days)
        if problem:
            raise UserError(f"--{problem[0]}: {problem[1]}")
    flags = (("experiment", "--experiment"), ("night", "--night"), (_OLD_NIGHT, "--target"))
    for dest, flag in flags:
        if dest in given:
            _check_experiment_option(flag, given[dest], args.command, dest == "experiment")
    if _OLD_NIGHT in given:
        if "night" in given:
            raise UserError("--target: is --night's old spelling; give --night alone")
        print("note: plan --target is now --night (the night's experiment)", file=sys.stderr)
        args.night = given[_OLD_NIGHT]
    if "strategies" in given:
        _check_strategies(args.strategies)
    if args.command == "run" and args.strategy:  # empty: the experiment's [run] strategy
        _check_run_strategy(args.strategy)
    if "source" in given and not args.source.strip():
        raise UserError("--source: is empty: give a file or folder, or leave --source out")
    if "results" in given:
        problem = folder_problem(args.results)
        if problem:
            raise UserError(f"--results: {problem}")


def _check_amount(dest: str, value) -> None:
    """A count or amount option (``_INT_RULES``, ``_FLOAT_RULES``) within its rule and bound."""
    flag = "--" + dest.replace("_", "-")
    rule = _INT_RULES.get(dest) or _FLOAT_RULES.get(dest)
    if not rule:
        return
    if not ((isinstance(value, int) or math.isfinite(value)) and rule[1](value)):
        raise UserError(f"{flag} must be {rule[0]}, got {value!r}")
    if len(rule) > 2 and rule[2] is not None and value > rule[2]:
        raise UserError(f"{flag} must be <= {rule[2]:,}, got {value!r}")


_OLD_NIGHT = "night_as_target"  # plan's old spelling --target, still read


def _check_experiment_option(flag: str, value: str, command: str, folder_ok: bool) -> None:
    """An experiment's name (a safe folder name) or the path of an existing .toml file."""
    from harness.experiment import name_problem

    if command in _FOLDER_EXPERIMENT and folder_ok:
        problem = name_problem(value, folder=True)  # a folder under --results: never a path
    elif not value:
        problem = "is empty"
    elif value.endswith(".toml") or Path(value).is_file():
        return  # a file: resolve_experiment_path says when it is missing
    else:
        problem = name_problem(value)
        problem = problem and f"{problem}; or give the path of a .toml file"
    if problem:
        raise UserError(f"{flag}: {problem}")


def _check_strategies(text: str) -> None:
    from strategies.registry import strategy_problem

    names = [s.strip() for s in text.split(",")]
    for name in names:
        if problem := strategy_problem(name):
            raise UserError(f"--strategies: {problem}")
    if len(set(names)) < len(names):
        raise UserError(f"--strategies: names a strategy twice: {text!r}")


def _check_run_strategy(name: str) -> None:
    """`run --strategy`: a registered strategy or one of its twins, checked before the run
    imports torch, so that a typo is refused in a second."""
    from strategies import get_strategy

    try:
        get_strategy(name)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit status (2 for a user error)."""
    args = build_parser().parse_args(argv)
    try:
        validate_args(args)
        with stops_like_ctrl_c():
            return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
