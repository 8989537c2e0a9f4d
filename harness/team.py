"""The team's goals, which the protocol, the verdict, `final` and the CLI all read from here
(no heavy imports: the CLI reads them before any work)."""

TARGET_MARGIN = 0.03  # more than 3% below v4's MAE: the MAE target and the effect to detect
TEAM_DEFAULT = "tpe_median"  # the team's current strategy: kept unless the evidence beats it
NIGHT_TRIAL_COUNTS = (40, 60, 70)  # the brief: 40-70 trials a night
TEAM_TRIAL_MINUTES = (15, 20)  # the team's trial: one training early-stopped at convergence
