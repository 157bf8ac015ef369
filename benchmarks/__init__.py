"""Scenarios measured against the project's simulator; ``python -m benchmarks`` runs them.

The package has one shape:

``scenarios/``
    One module per scenario, named as ``python -m benchmarks NAME`` names it
    (``ours-bulk`` is ``scenarios/ours_bulk.py``). Each has a ``run`` that
    measures and a ``main(argv)`` that prints what it measured.
``report.py``, ``plot.py``
    ``python -m benchmarks all``: the five scenarios of ``docs/benchmarks.md``,
    the page and its picture.
``competitors/``
    The clients the ``bulk`` scenario compares, each run in a process of its own.
The machinery the scenarios share, each module named for what it holds:
    ``simulator.py`` (a simulator in this process: its key, a client on its
    clock, the detection lag and polls its record shows), ``simproc.py`` (the
    simulator in a process of its own), ``figures.py`` (quantiles, medians and
    spreads), ``meters.py`` (what a process measures about itself: memory,
    loop lag, the garbage collector), ``probe.py`` (one call against a
    misbehaving simulator), ``bulk_report.py`` (what bulk at the provider's
    limits measures, and its table), ``lanes_report.py`` (what an interactive
    job beside a batch waits for, and its table), ``audit.py`` (jobs held
    against the service's own record), ``redis_server.py`` (a redis-server of
    its own).

Scenarios import the machinery, never each other.
"""

from pathlib import Path

#: The checkout holding this package: child processes run from it, so ``-m`` finds it.
ROOT = Path(__file__).resolve().parent.parent
