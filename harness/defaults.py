"""The defaults the command line shows, owned here so that the CLI and the modules that use
them read one value (no heavy imports: the CLI reads them before any work, as it reads
harness.team)."""

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
