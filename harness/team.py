"""The team's goals, which the protocol, the verdict, `final` and the CLI all read from here
(no heavy imports: the CLI reads them before any work)."""

TARGET_MARGIN = 0.03  # more than 3% below v4's MAE: the MAE target and the effect to detect
TEAM_DEFAULT = "tpe_median"  # the team's current strategy: kept unless the evidence beats it
NIGHT_TRIAL_COUNTS = (40, 60, 70)  # the brief: 40-70 trials a night
TEAM_TRIAL_MINUTES = (15, 20)  # the team's trial: one training early-stopped at convergence
GAP_GUARD = 0.05  # validation and test MAE within 5%: no overfitting to the validation split
PRUNED_SHARE_AIM = (0.20, 0.30)  # the brief: pruning should skip 20-30% of trials


def team_trials_sentence(n_trials: int, hours: float) -> str:
    """How ``n_trials`` harness trials in ``hours`` relate to the team's trials and the brief's
    40-70: a harness trial climbs the ladder to fixed epochs (or is pruned); the team's trains
    to convergence in TEAM_TRIAL_MINUTES."""
    short, long = TEAM_TRIAL_MINUTES
    low, high = NIGHT_TRIAL_COUNTS[0], NIGHT_TRIAL_COUNTS[-1]
    team_low, team_high = hours * 60 / long, hours * 60 / short
    fits = "within" if low <= team_low and team_high <= high else "outside"
    return (
        f"{n_trials} harness trials are not {n_trials} of the team's trials: the same "
        f"{hours:g} h hold {team_low:.0f}-{team_high:.0f} of the team's {short}-{long} minute "
        f"trials, {fits} the brief's {low}-{high}."
    )
