"""Renderers of the report's content blocks: Markdown and a self-contained HTML page.

A block is a tuple, the first item its kind:
``("h1" | "h2" | "h3", text)``, ``("p", text)``, ``("li", text)``,
``("table", DataFrame)`` and ``("img", PNG file name in the plot folder, caption)``.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

HTML_STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;line-height:1.45}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
    "img{max-width:100%}"
)


def fmt_number(x, digits: int = 4) -> str:
    """A float with ``digits`` decimals, "n/a" for None or a non-finite float, else ``str(x)``."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, (float, np.floating)) else str(x)


def fmt_share(x) -> str:
    """A share as a whole percentage ("42%"), "n/a" for None or a non-finite number."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.0%}"


def _flat_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with two-level column names joined into one ("saved_share median")."""
    df = df.copy()
    df.columns = [
        " ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c) for c in df.columns
    ]
    return df


def _table_md(df: pd.DataFrame) -> str:
    df = _flat_columns(df)
    cells = [
        [fmt_number(v) if isinstance(v, (float, np.floating)) else str(v) for v in row]
        for row in df.itertuples(index=False)
    ]
    lines = [
        "| " + " | ".join(df.columns) + " |",
        "| " + " | ".join("---" for _ in df.columns) + " |",
    ]
    return "\n".join(
        lines + ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in cells]
    )


def _markdown_block(block: tuple) -> str | None:
    kind = block[0]
    if kind.startswith("h"):
        return "#" * int(kind[1]) + " " + block[1]
    if kind == "p":
        return block[1]
    if kind == "li":
        return f"- {block[1]}"
    if kind == "table":
        return _table_md(block[1])
    if kind == "img":
        return f"![{block[2]}](plots/{block[1]})"
    return None


def render_markdown(blocks: list) -> str:
    """The blocks as Markdown, each followed by a blank line; images link to ``plots/``."""
    out = []
    for block in blocks:
        text = _markdown_block(block)
        out += [text, ""] if text is not None else [""]
    return "\n".join(out)


def _html_block(block: tuple, plot_dir: Path) -> str | None:
    kind = block[0]
    if kind.startswith("h"):
        return f"<{kind[:2]}>{html.escape(block[1])}</{kind[:2]}>"
    if kind == "p":
        return f"<p>{html.escape(block[1]).replace('**', '')}</p>"
    if kind == "li":
        return f"<ul><li>{html.escape(block[1])}</li></ul>"
    if kind == "table":
        return _flat_columns(block[1]).to_html(
            index=False, float_format=lambda v: f"{v:.4f}", na_rep="n/a", border=0
        )
    if kind == "img":
        data = base64.b64encode((plot_dir / block[1]).read_bytes()).decode()
        caption = html.escape(block[2])
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    return None


def render_html(blocks: list, plot_dir: Path) -> str:
    """The blocks as one HTML page, images from ``plot_dir`` embedded (no outside files)."""
    body = [part for block in blocks if (part := _html_block(block, plot_dir)) is not None]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Report</title>"
        f"<style>{HTML_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
