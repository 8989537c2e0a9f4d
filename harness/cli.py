"""The command line: parses arguments and calls functions that never read sys.argv."""

from __future__ import annotations

import argparse
import json
import sys

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
    return parser


def _cmd_data(args: argparse.Namespace) -> int:
    from harness.datasets import DataSpec, describe, format_description, load_data

    info = describe(load_data(DataSpec(args.stations, args.days, args.seed, args.source)))
    print(json.dumps(info) if args.json else format_description(info))
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
