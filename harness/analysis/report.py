"""The write-up: REPORT.md and a self-contained REPORT.html, generated from the records alone.

The content is the list of sections ``harness.analysis.sections.SECTIONS``, one per heading,
in report order; ``harness.analysis.render`` turns their blocks into Markdown and HTML.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.analysis import sections
from harness.analysis.analyze import Analysis, write_plots
from harness.analysis.plots import remove_figures
from harness.analysis.render import render_html, render_markdown
from harness.analysis.sections import ReportInputs
from harness.sidefiles import read_json_guarded, write_text_atomic


def build_sections(inputs: ReportInputs) -> list:
    """Every section's content blocks, in report order (``sections.SECTIONS``); a figure that
    was not drawn (``write_report(plots=False)``) is left out."""
    return [
        block
        for section in sections.SECTIONS
        for block in section(inputs)
        if not (block[0] == "img" and block[1] is None)
    ]


# The side records the report includes, by file: the command that makes one, and the keys the
# report reads from it.
RECORDS = {
    "plan.json": ("plan", ("summary", "projections", "n_trials", "hours")),
    "final.json": ("final", ("summary", "table")),
}


def current_record(a: Analysis, out_dir: Path, name: str) -> dict | None:
    """The record ``name`` (RECORDS) in ``out_dir`` when it was made for the analysis's current
    recommendation (its ``strategy`` is ``a.choice``) and holds what the report reads; else
    None, with one line on stderr saying why and which command makes it again."""
    path = out_dir / name
    record = read_json_guarded(path)
    if record is None:
        return None
    command, keys = RECORDS[name]
    made_for = record.get("strategy")
    missing = [k for k in keys if k not in record]
    if made_for != a.choice:
        why = f"stale: made for {made_for}" if made_for else "stale: records no strategy"
        why += f", the recommendation is now {a.choice}"
    elif missing or not isinstance(record[keys[1]], list):
        why = f"lacks {', '.join(missing) or keys[1] + ' as a list'}"
    else:
        return record
    print(
        f"warning: {path}: left out of the report ({why}); make it again with: python -m "
        f"harness {command} --experiment {out_dir.name} --results {out_dir.parent}",
        file=sys.stderr,
    )
    return None


def write_report(a: Analysis, out_dir: Path, plots: bool = True) -> Path:
    """Draws the plots into ``out_dir/plots`` and writes ``REPORT.md`` and ``REPORT.html`` in
    ``out_dir`` (with the plan and final check where their JSON is there and was made for the
    current recommendation); returns the .md. ``plots=False``: the same text without figures,
    nothing drawn (the plots take most of a report's time). Once both files are written, the
    figures of an earlier report that this one does not show leave ``plots/``. A write that
    fails is one UserError."""
    plot_dir = out_dir / "plots" if plots else None
    inputs = ReportInputs(
        analysis=a,
        plots=write_plots(a, plot_dir) if plot_dir else {},
        plan=current_record(a, out_dir, "plan.json"),
        final=current_record(a, out_dir, "final.json"),
        plot_dir=plot_dir,
    )
    blocks = build_sections(inputs)
    write_text_atomic(out_dir / "REPORT.md", render_markdown(blocks))
    write_text_atomic(out_dir / "REPORT.html", render_html(blocks, plot_dir))
    shown = {Path(block[1]).stem for block in blocks if block[0] == "img"}
    gone = remove_figures(out_dir / "plots", keep=shown)
    if gone:
        print(
            f"note: {gone} figure files (png and svg) of an earlier report removed from "
            f"{out_dir / 'plots'}: this report does not show them, and they might not match "
            "these results",
            file=sys.stderr,
        )
    return out_dir / "REPORT.md"
