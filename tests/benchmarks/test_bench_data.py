"""Building the full-scale default data (generation + windows + split + subsample index):
target at most 20 s and 4 GB peak memory on a 2-core machine."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.benchmark

BUILD = """
import json, resource, time
start = time.perf_counter()
from model.synthetic import generate_panel
from model.windows import build_windows
from model.fidelity import FidelitySampler
data = build_windows(generate_panel(1498, 28, 0))
fid = FidelitySampler(data)
for f in (1 / 9, 1 / 3, 1.0):
    fid.indices(f)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "windows": sum(len(s) for s in data.splits.values())}))
"""


def _build_in_fresh_process() -> dict:
    # A fresh process so the peak memory is this build's alone (imports included).
    out = subprocess.run(
        [sys.executable, "-c", BUILD], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_full_scale_build(benchmark):
    result = benchmark.pedantic(_build_in_fresh_process, rounds=2, iterations=1)
    benchmark.extra_info.update(result)
    print(
        f"\nfull-scale build: {result['seconds']:.2f} s, peak {result['peak_rss_mb']:.0f} MB, "
        f"{result['windows']:,} windows"
    )
    assert result["windows"] > 800_000
    assert result["seconds"] <= 20 and result["peak_rss_mb"] <= 4096
