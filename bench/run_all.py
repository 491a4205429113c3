"""Run every benchmark in turn (`make bench`); each prints its figures and writes
bench/results/<name>.json. Benchmarks share two CPU cores, so they run one at a time.

Usage: .venv/bin/python bench/run_all.py [--only NAME ...] [--with-100k]

The 100k-paper scale point takes about an hour of embedding on a 2-core machine, so it is
opt-in (`--with-100k`); by default scale runs 1k and 10k, embedded and against a Chroma server.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PY = sys.executable

# (name, arguments after the script); order: cheap first, so a failure shows early.
PLAN: list[tuple[str, str, list[str]]] = [
    ("ingest_search", "ingest_search.py", []),
    ("embed_throughput", "embed_throughput.py", []),
    ("answers", "answers.py", []),
    ("ui_perf", "ui_perf.py", []),
    ("ui_load", "ui_load.py", []),
    ("reliability", "reliability.py", []),
    ("claim_support", "claim_support.py", []),
    ("scale", "scale.py", ["--sizes", "1000", "10000"]),
    ("scale_server", "scale.py", ["--sizes", "1000", "10000", "--chroma-server"]),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=[name for name, _, _ in PLAN])
    ap.add_argument("--with-100k", action="store_true", help="add the 100k-paper scale point")
    args = ap.parse_args()
    plan = [p for p in PLAN if not args.only or p[0] in args.only]
    if args.with_100k:
        plan.append(("scale_100k", "scale.py", ["--sizes", "100000"]))
    failed: list[str] = []
    for name, script, extra in plan:
        print(f"\n===== {name}: bench/{script} {' '.join(extra)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([PY, str(BENCH / script), *extra], cwd=BENCH.parent)
        print(f"===== {name}: exit {rc} in {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
