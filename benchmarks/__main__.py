"""``python -m benchmarks``: every benchmark, one table (see benchmarks/report.py)."""

from benchmarks.report import main

raise SystemExit(main())
