"""Record once, replay many: a surrogate of the objective fitted to recorded learning curves.

- ``learners``: the candidate learners (scikit-learn), one per name;
- ``surrogate``: the surrogate: fitted and chosen on held-out configurations, with seed noise
  and costs, and its evidence;
- ``prepare``: preparing a replay run: the learning curves, the fitted surrogate (cached);
- ``trainer``: the surrogate behind the Trainer interface, with a simulated clock.
"""
