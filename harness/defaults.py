"""The defaults the command line shows, owned here so that the CLI and the modules that use
them read one value (no heavy imports: the CLI reads them before any work, as it reads
harness.team)."""

NIGHT_EXPERIMENT = "velib_overnight"  # the night `plan` scales to unless --night names another
DEFAULT_EXPERIMENT = "quick"  # the experiment every command uses when --experiment is left out
RESULTS_DIR = "results"  # where runs, records and reports go when --results is left out
# The synthetic data set `data` describes by default (a data file's [data] table may leave
# these out too); full scale is 1,498 stations x 28 days.
DATA_STATIONS = 150
DATA_DAYS = 28
# plan --probe: training samples per probed configuration, and the fewest that time training
# rather than start-up.
PROBE_SAMPLES = 65536
MIN_PROBE_SAMPLES = 4096
NIGHT_HOURS = (12, 15, 18)  # the nights plan projects; --hours lies within, 15 by default
# compare: the best configurations retrained for the noise floor (--noise-configs) and the
# fresh training seeds each run's incumbent is re-evaluated with (--reeval-seeds).
NOISE_CONFIGS = 3
REEVAL_SEEDS = 2
# compare --two-stage: replayed seeds per strategy, strategies confirmed, most real seeds.
SCREEN_SEEDS = 50
CONFIRM = 1
MAX_SEEDS = 20
RECORD_REPEATS = 2  # record: training seeds per configuration
SURROGATE_REFITS = 40  # architecture: surrogate refits behind its intervals (a GP's take seconds)
# final: training seeds, incumbents retrained, and the early stopping of each fit.
FINAL_SEEDS = 5
FINAL_TOP_K = 1
FINAL_MAX_EPOCHS = 30
FINAL_PATIENCE = 3
