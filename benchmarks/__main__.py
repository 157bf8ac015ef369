"""``python -m benchmarks``: run every scenario and print what it measured."""

from .single_job import main

main()
