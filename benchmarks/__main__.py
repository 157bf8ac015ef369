"""``python -m benchmarks [single|bulk] [options]``: run a scenario and print what it measured."""

import sys

from . import bulk, single_job

SCENARIOS = {"single": single_job.main, "bulk": bulk.main}

if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS:
    print(f"usage: python -m benchmarks {{{'|'.join(SCENARIOS)}}} [options]", file=sys.stderr)
    sys.exit(2)
SCENARIOS[sys.argv[1]](sys.argv[2:])
