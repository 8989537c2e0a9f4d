"""The write-up: REPORT.md and a self-contained REPORT.html, generated from the records alone.

The content is a list of sections (``harness.analysis.sections``), one per heading, in the
order below; ``harness.analysis.render`` turns their blocks into Markdown and HTML.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.analysis import sections
from harness.analysis.analyze import Analysis, write_plots
from harness.analysis.render import render_html, render_markdown
from harness.analysis.sections import ReportInputs

SECTIONS = (
    sections.title,
    sections.setup,
    sections.protocol,
    sections.results,
    sections.fidelity_trust,
    sections.hyperparameters,
    sections.mae_against_cost,
    sections.two_stage,
    sections.verdict,
    sections.brief,
    sections.overnight_plan,
    sections.final_check,
    sections.replay,
    sections.cannot_tell,
    sections.caveats_section,
)


def build_sections(inputs: ReportInputs) -> list:
    """Every section's content blocks, in report order."""
    return [block for section in SECTIONS for block in section(inputs)]


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def write_report(a: Analysis, out_dir: Path) -> Path:
    """Draws the plots into ``out_dir/plots`` and writes ``REPORT.md`` and ``REPORT.html`` in
    ``out_dir`` (with the plan and final check where their JSON is there); returns the .md."""
    plot_dir = out_dir / "plots"
    inputs = ReportInputs(
        analysis=a,
        plots=write_plots(a, plot_dir),
        plan=_read_json(out_dir / "plan.json"),
        final=_read_json(out_dir / "final.json"),
        plot_dir=plot_dir,
    )
    blocks = build_sections(inputs)
    (out_dir / "REPORT.md").write_text(render_markdown(blocks))
    (out_dir / "REPORT.html").write_text(render_html(blocks, plot_dir))
    return out_dir / "REPORT.md"
