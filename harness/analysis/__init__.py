"""Analysis of recorded runs. Reads results/ only; imports neither torch nor model/.

- ``loading``: every run of an experiment read from results/ into pooled tables;
- ``analyze``: every number the comparison reports, gathered once (``Analysis``);
- ``measures``: the descriptive numbers (anytime curves, compute saved, fidelity trust,
  rankings, importance, good ranges, false prunes);
- ``protocol``: the protocol's numbers (the MAE target, time to target, re-evaluated
  incumbents, timing noise, horizon trust, warm start) and what the evidence cannot tell;
- ``verdict``: paired tests against the declared controls, the tie rule, identical strategies;
- ``agreement``: how far replayed and real verdicts agree;
- ``pareto``: MAE against cost, and its Pareto fronts;
- ``plots``: the comparison's figures;
- ``sections``: the report's content, one function per heading;
- ``two_stage_section``: the report's two-stage section;
- ``tunability_section``: the report's answer on which parameters to search, and how many;
- ``architecture_section``: the report's answers to the brief's architecture questions;
- ``currency``: the budget's currency (FLOPs against steps and measured seconds) and its limits;
- ``render``: Markdown and HTML renderers of the content blocks;
- ``report``: REPORT.md and REPORT.html, put together.
"""
