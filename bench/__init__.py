"""The benchmark harness of issue 9: ``make bench`` runs ``python -m bench.run``.

Not part of the test suite and not installed with the service; ``docs/benchmarks.md``
says how to run it and what it found.
"""
