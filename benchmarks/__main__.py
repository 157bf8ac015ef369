"""``python -m benchmarks SCENARIO [options]``: run a scenario and print what it measured.

``all`` runs every scenario and writes ``docs/benchmarks.md`` (``make bench``).
"""

import sys

from . import report
from .scenarios import (
    bulk,
    crash,
    hostile,
    lanes,
    latency,
    notify,
    ours_bulk,
    overhead,
    scale,
    shared,
    single,
    soak,
)

SCENARIOS = {
    "all": report.main,
    "bulk": bulk.main,
    "crash": crash.main,
    "hostile": hostile.main,
    "lanes": lanes.main,
    "latency": latency.main,
    "notify": notify.main,
    "overhead": overhead.main,
    "scale": scale.main,
    "shared": shared.main,
    "single": single.main,
    "soak": soak.main,
    "ours-bulk": ours_bulk.main,
}

if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS:
    print(f"usage: python -m benchmarks {{{'|'.join(SCENARIOS)}}} [options]", file=sys.stderr)
    sys.exit(2)
SCENARIOS[sys.argv[1]](sys.argv[2:])
