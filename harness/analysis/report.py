"""The write-up: REPORT.md and a self-contained REPORT.html, generated from the records alone."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis.agreement import agreement, surrogate_table
from harness.analysis.analyze import Analysis, write_plots
from harness.analysis.pareto import pareto_front, trial_costs
from harness.analysis.plots import pareto_plot


def _f(x, digits=4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, (float, np.floating)) else str(x)


def _pct(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.0%}"


def build_sections(
    a: Analysis, plots: dict[str, str], plan: dict | None, final: dict | None, plot_dir: Path
) -> list:
    """A list of ("h", text) / ("p", text) / ("table", DataFrame) / ("img", file, caption) blocks."""
    r, exp = a.results, a.results.experiment
    any_meta = next(iter(r.meta.values()))
    seeds = sorted({s for _, s in r.meta})
    ladder = exp["ladder"]
    blocks: list = [("h1", f"Which strategy should run tonight? ({exp['name']})")]
    blocks.append(
        (
            "p",
            "The question: which hyperparameter-optimization strategy finds the best forecaster within the "
            "budget, how much pruning saves and what it costs, which hyperparameters deserve the search, and "
            "what exact setup should run overnight. Every number below is computed from the recorded runs.",
        )
    )
    blocks.append(("h2", "Setup"))
    data = exp["data"]
    blocks.append(
        (
            "p",
            f"Data: {data['source'] or 'synthetic Vélib-like network'} ({data['stations']} stations x "
            f"{data['days']} days). Fidelity ladder: data fractions {[round(f, 4) for f in ladder['fractions']]}, "
            f"epochs {ladder['epochs']}, report steps {ladder['steps']}. Budget per run: "
            f"{_budget(any_meta['budget'])}. "
            f"{len(r.strategies)} strategies x {len(seeds)} seeds ({seeds}); {len(r.trials)} trials and "
            f"{len(r.rungs)} rungs recorded. Machine: {any_meta['device']} ({any_meta.get('device_name', '')}), "
            f"torch {any_meta['versions']['torch']}, optuna {any_meta['versions']['optuna']}.",
        )
    )
    blocks.append(("h3", "How each strategy works"))
    described = {s: m for (s, _), m in sorted(r.meta.items())}
    blocks.append(
        (
            "table",
            pd.DataFrame(
                [
                    {
                        "strategy": s,
                        "how it works": m["strategy_summary"],
                        "when it shines": m["strategy_rationale"],
                    }
                    for s, m in described.items()
                ]
            ),
        )
    )

    blocks.append(("h2", "Results"))
    rk = a.ranking.copy()
    rk["95% CI of mean"] = [f"{_f(lo)} .. {_f(hi)}" for lo, hi in zip(rk["ci_low"], rk["ci_high"])]
    blocks.append(
        (
            "p",
            f"Final best validation MAE per run (bikes), over {len(seeds)} seeds; one-sided Mann-Whitney U "
            f"test of the winner against each strategy; noise floor {_f(a.floor)} bikes "
            f"({'measured' if np.isfinite(a.floor) else 'not measured: run compare --noise-seeds'}).",
        )
    )
    blocks.append(
        (
            "table",
            rk[
                [
                    "rank",
                    "strategy",
                    "median",
                    "mean",
                    "95% CI of mean",
                    "seeds",
                    "p_vs_winner",
                    "verdict",
                ]
            ],
        )
    )
    blocks.append(("img", plots["anytime"], "Best validation MAE so far against wall-clock."))
    blocks.append(("img", plots["rank_over_time"], "Rank of each strategy's median over time."))
    t = a.ttt.copy()
    blocks.append(
        (
            "p",
            f"Time to target: first time within {a.tolerance:.0%} of the best MAE any run reached "
            f"(target {_f(a.target)} bikes); speed-up against random search without pruning.",
        )
    )
    blocks.append(("table", t.rename(columns={"median": "median seconds"})))
    blocks.append(("img", plots["time_to_target"], "Time to target."))
    sv = a.saved
    blocks.append(
        (
            "p",
            "Compute saved: time spent against the time the same trials would have taken at full fidelity "
            "(pruned trials extrapolated from their own measured cost per sample).",
        )
    )
    blocks.append(
        (
            "table",
            pd.DataFrame(
                {
                    "strategy": sv["strategy"],
                    "saved (median)": sv[("saved_share", "median")].map(_pct),
                    "saved (min..max)": [
                        f"{_pct(lo)}..{_pct(hi)}"
                        for lo, hi in zip(sv[("saved_share", "min")], sv[("saved_share", "max")])
                    ],
                    "pruned (median)": sv[("pruned_share", "median")].map(_pct),
                }
            ),
        )
    )
    blocks.append(("img", plots["savings"], "Compute saved and share of trials pruned."))

    blocks.append(("h2", "Can the low rungs be trusted?"))
    trust = a.trust
    blocks.append(
        (
            "p",
            "Spearman rank correlation of MAE at each rung with MAE at the last rung, over trials that "
            "reached both; the rho_ columns show which parameters each rung's ranking favours (negative: a "
            "larger value gives a lower MAE at that rung).",
        )
    )
    blocks.append(("table", trust))
    blocks.append(
        ("img", plots["fidelity_trust"], "MAE at low rungs against MAE at full fidelity.")
    )
    blocks.append(
        ("img", plots["learning_curves"], "Learning curves of pruned and completed trials.")
    )
    fp = a.false_prunes
    if fp["audited"]:
        blocks.append(
            (
                "p",
                f"False prunes: {fp['audited']} pruned trials were finished at full fidelity; "
                f"{fp['would_have_won']} ({_pct(fp['share'])}) would have beaten their run's best survivor.",
            )
        )
    else:
        blocks.append(("p", "False prunes were not audited (run compare --audit K)."))

    blocks.append(("h2", "Hyperparameters worth searching"))
    imp = pd.DataFrame(
        {
            "last rung (complete trials)": a.importance_final,
            "rung 1 (every trial)": a.importance_rung1,
        }
    )
    blocks.append(("table", imp.reset_index(names="param").round(3)))
    blocks.append(("p", "Where the best 20% of complete trials lie:"))
    blocks.append(("table", a.good_ranges[["param", "good", "searched"]]))
    blocks.append(("img", plots["importance"], "Parameter importance (optuna.importance)."))
    blocks.append(
        (
            "p",
            f"Search tonight: {', '.join(a.params_to_search()) or 'n/a'} (the most important, at most 6).",
        )
    )

    costs = trial_costs(r)
    complete = costs[costs["reached_full"]].dropna(subset=["parameters"])
    if len(complete) >= 2:
        fronts = {c: pareto_front(complete, c) for c in ("full_train_seconds", "parameters")}
        blocks.append(("h2", "MAE against cost"))
        blocks.append(
            (
                "p",
                "The Pareto front of the trials that reached full fidelity: no other trial is both more accurate "
                "and cheaper. Pruned trials are plotted with their training time extrapolated from their own "
                "cost per sample (marked x) and their MAE at the rung where they stopped; they are not on the fronts.",
            )
        )
        blocks.append(
            (
                "img",
                pareto_plot(costs, fronts, plot_dir),
                "Validation MAE against full-fidelity training time and parameter count.",
            )
        )
        for c, label in (("full_train_seconds", "training seconds"), ("parameters", "parameters")):
            front = fronts[c][
                ["strategy", "seed", "trial", "val_mae", "full_train_seconds", "parameters"]
            ]
            blocks.append(("p", f"Front against {label} ({len(front)} trials):"))
            blocks.append(("table", front))

    blocks.append(("h2", "Verdict"))
    blocks.append(("p", f"Run **{a.choice}**: {a.choice_reason}."))
    if plan:
        blocks.append(("h2", "The overnight plan"))
        blocks.append(("p", plan["summary"]))
        blocks.append(("table", pd.DataFrame(plan["projections"])))
    if final:
        blocks.append(("h2", "The final check"))
        blocks.append(("p", final["summary"]))
        blocks.append(("table", pd.DataFrame(final["table"])))

    agree = agreement(a.results_dir, r.experiment["name"] + (".replay" if a.replayed else ""))
    if a.replayed or agree:
        blocks.append(("h2", "Replay: the surrogate and its agreement with real runs"))
        evidence = agree["surrogate"] if agree else _surrogate_evidence(a)
        if evidence:
            blocks.append(
                (
                    "p",
                    f"The surrogate was fitted to {evidence['configs']} recorded configurations "
                    f"({evidence['repeats_per_config']:.1f} repeats each; seed noise: {evidence['noise_trial']:.3f} "
                    "bikes per trial). Each candidate model was scored by predicting every recorded "
                    "configuration's last-rung MAE from the others:",
                )
            )
            blocks.append(("table", surrogate_table(evidence)))
        if agree:
            blocks.append(("p", agree["summary"]))
            blocks.append(("table", agree["table"]))
        else:
            blocks.append(
                (
                    "p",
                    "No real runs of this experiment to compare with: the replayed verdict is unchecked.",
                )
            )

    blocks.append(("h2", "Caveats the data shows"))
    for line in caveats(a):
        blocks.append(("li", line))
    return blocks


def _surrogate_evidence(a: Analysis) -> dict | None:
    path = Path(a.results_dir) / f"{a.results.experiment['name']}.replay" / "surrogate.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _budget(budget: dict) -> str:
    """The budget the runs actually had (command-line overrides included), from their metadata."""
    parts = [
        f"{budget['n_trials']} trials" if budget.get("n_trials") else "",
        f"{budget['timeout_minutes']:g} minutes"
        if budget.get("timeout_minutes") not in (None, float("inf"))
        else "",
    ]
    return " or ".join(p for p in parts if p) or "unlimited"


def caveats(a: Analysis) -> list[str]:
    out = []
    rung1 = a.trust[a.trust["rung"] == 1]
    if len(rung1) and np.isfinite(rung1["spearman_with_final"].iloc[0]):
        rho = rung1["spearman_with_final"].iloc[0]
        word = "weak" if rho < 0.6 else "moderate" if rho < 0.8 else "strong"
        out.append(
            f"Fidelity trust at rung 1 is {word}: Spearman {rho:.2f} with the last rung "
            f"(n={int(rung1['trials_with_final'].iloc[0])}). Pruners are only as good as this correlation."
        )
        if "rho_learning_rate" in rung1:
            lr1 = rung1["rho_learning_rate"].iloc[0]
            lr_last = a.trust["rho_learning_rate"].iloc[-1]
            out.append(
                f"Short-horizon bias: learning rate's Spearman with MAE is {lr1:.2f} at rung 1 and "
                f"{lr_last:.2f} at the last rung; low rungs reward fast convergence."
            )
    if a.false_prunes["audited"]:
        out.append(
            f"False prunes: {a.false_prunes['would_have_won']} of {a.false_prunes['audited']} audited pruned trials "
            "would have beaten the survivor."
        )
    n_trials = a.best["trials"].median()
    out.append(
        f"Runs finished a median of {n_trials:.0f} trials. Median pruning never prunes before 5 trials complete, "
        "and Hyperband's brackets each need several trials at a rung before they prune: at small budgets both "
        "behave much like no pruning."
    )
    if not np.isfinite(a.floor):
        out.append(
            "The noise floor was not measured, so small differences between strategies may be seed noise."
        )
    else:
        out.append(
            f"Differences below the noise floor ({a.floor:.4f} bikes, seed-to-seed spread of the same "
            "configuration) are ties, whatever a single run says."
        )
    return out


def _table_md(df: pd.DataFrame) -> str:
    df = df.copy()
    df.columns = [
        " ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c) for c in df.columns
    ]
    cells = [
        [_f(v) if isinstance(v, (float, np.floating)) else str(v) for v in row]
        for row in df.itertuples(index=False)
    ]
    lines = [
        "| " + " | ".join(df.columns) + " |",
        "| " + " | ".join("---" for _ in df.columns) + " |",
    ]
    return "\n".join(
        lines + ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in cells]
    )


def render_markdown(blocks: list) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind.startswith("h"):
            out.append("#" * int(kind[1]) + " " + b[1])
        elif kind == "p":
            out.append(b[1])
        elif kind == "li":
            out.append(f"- {b[1]}")
        elif kind == "table":
            out.append(_table_md(b[1]))
        elif kind == "img":
            out.append(f"![{b[2]}](plots/{b[1]})")
        out.append("")
    return "\n".join(out)


def render_html(blocks: list, plot_dir: Path) -> str:
    body = []
    for b in blocks:
        kind = b[0]
        if kind.startswith("h"):
            body.append(f"<{kind[:2]}>{html.escape(b[1])}</{kind[:2]}>")
        elif kind == "p":
            text = html.escape(b[1]).replace("**", "")
            body.append(f"<p>{text}</p>")
        elif kind == "li":
            body.append(f"<ul><li>{html.escape(b[1])}</li></ul>")
        elif kind == "table":
            df = b[1].copy()
            df.columns = [
                " ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c)
                for c in df.columns
            ]
            body.append(
                df.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="n/a", border=0)
            )
        elif kind == "img":
            data = base64.b64encode((plot_dir / b[1]).read_bytes()).decode()
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b[2])}">'
                f"<figcaption>{html.escape(b[2])}</figcaption></figure>"
            )
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;line-height:1.45}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "img{max-width:100%}"
    )
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Report</title><style>{style}</style></head><body>{''.join(body)}</body></html>"


def write_report(a: Analysis, out_dir: Path) -> Path:
    plot_dir = out_dir / "plots"
    plots = write_plots(a, plot_dir)
    plan = (
        json.loads((out_dir / "plan.json").read_text())
        if (out_dir / "plan.json").is_file()
        else None
    )
    final = (
        json.loads((out_dir / "final.json").read_text())
        if (out_dir / "final.json").is_file()
        else None
    )
    blocks = build_sections(a, plots, plan, final, plot_dir)
    (out_dir / "REPORT.md").write_text(render_markdown(blocks))
    (out_dir / "REPORT.html").write_text(render_html(blocks, plot_dir))
    return out_dir / "REPORT.md"
