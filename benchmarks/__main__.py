"""``python -m benchmarks SCENARIO [options]``: run a scenario and print what it measured.

``all`` runs every scenario and writes ``docs/benchmarks.md`` (``make bench``).
"""

import sys

from . import (
    bulk,
    crash,
    hostile,
    report,
    scenario_bulk,
    scenario_latency,
    scenario_overhead,
    scenario_scale,
    shared,
    single_job,
    soak,
)

SCENARIOS = {
    "all": report.main,
    "bulk": scenario_bulk.main,
    "crash": crash.main,
    "hostile": hostile.main,
    "latency": scenario_latency.main,
    "overhead": scenario_overhead.main,
    "scale": scenario_scale.main,
    "shared": shared.main,
    "single": single_job.main,
    "soak": soak.main,
    "ours-bulk": bulk.main,
}

if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS:
    print(f"usage: python -m benchmarks {{{'|'.join(SCENARIOS)}}} [options]", file=sys.stderr)
    sys.exit(2)
SCENARIOS[sys.argv[1]](sys.argv[2:])
