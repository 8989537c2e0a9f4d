"""The command line: parses arguments and calls functions that never read sys.argv."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap

from harness.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="describe a data set: splits, missing share, persistence MAE")
    data.add_argument("--stations", type=int, default=150, help="synthetic stations (default 150; full scale 1498)")
    data.add_argument("--days", type=int, default=28, help="synthetic days (default 28)")
    data.add_argument("--seed", type=int, default=0, help="synthetic generator seed")
    data.add_argument("--source", help="a tidy CSV/Parquet file, or a directory of GBFS JSON or Paris CSV snapshots")
    data.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    data.set_defaults(func=_cmd_data)

    run = sub.add_parser("run", help="run one strategy on an experiment (resumes if run before)")
    run.add_argument("--strategy", required=True, help="a registered strategy (see 'list')")
    run.add_argument("--experiment", default="quick", help="a name in experiments/ or a path to a .toml file (default quick)")
    run.add_argument("--seed", type=int, default=0, help="strategy seed (default 0)")
    run.add_argument("--trials", type=int, help="trial budget (overrides the experiment's)")
    run.add_argument("--timeout-minutes", type=float, help="wall-clock budget (overrides the experiment's)")
    run.add_argument("--storage", help="any Optuna storage URL (default: journal file under results/<experiment>/)")
    run.add_argument("--device", help="auto, cpu or cuda[:N] (overrides the experiment's)")
    run.add_argument("--results", default="results", help="results folder (default ./results)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_run)

    lister = sub.add_parser("list", help="list strategies and experiments")
    lister.set_defaults(func=_cmd_list)
    return parser


def _cmd_data(args: argparse.Namespace) -> int:
    from harness.datasets import DataSpec, describe, format_description, load_data

    info = describe(load_data(DataSpec(args.stations, args.days, args.seed, args.source)))
    print(json.dumps(info) if args.json else format_description(info))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.experiment import load_experiment
    from harness.run import RunOptions, run_strategy
    from harness.summary import format_summary

    experiment = load_experiment(args.experiment)
    opts = RunOptions(strategy=args.strategy, seed=args.seed, results_dir=args.results, storage=args.storage,
                      n_trials=args.trials, timeout_minutes=args.timeout_minutes, device=args.device,
                      progress=not args.no_progress)
    summary = run_strategy(experiment, opts)
    print(f"{experiment.name} / {args.strategy} / seed {args.seed}  (study {summary['study']}, device {summary['device']})")
    print(format_summary(summary))
    print(f"records       {summary['records']}")
    if summary["interrupted"]:
        print("interrupted   finished trials are kept; run the same command again to continue", file=sys.stderr)
        return 130
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from harness.experiment import list_experiments, load_experiment
    from strategies import STRATEGIES

    print("strategies:")
    for s in STRATEGIES.values():
        print(f"  {s.name:<14} {s.summary}")
        print(textwrap.fill(s.rationale, width=100, initial_indent=" " * 17, subsequent_indent=" " * 17))
    print("experiments:")
    for path in list_experiments():
        e = load_experiment(str(path))
        print(f"  {path.stem:<16} {e.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
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
