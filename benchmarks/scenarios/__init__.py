"""One module per scenario, named as ``python -m benchmarks NAME`` names it (``-`` as ``_``)."""
