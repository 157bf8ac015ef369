"""Scenarios measured against the project's simulator; ``python -m benchmarks`` runs them."""
