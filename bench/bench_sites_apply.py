"""Benchmark of ``axtrace sites apply`` for 10, 100 and 500 sites: time, and how it grows.

Starts a Prefect server (SQLite, or PostgreSQL with ``--postgres``) and times the real command,
``axtrace sites apply FILE`` (a new process each time, as an operator runs it), for generated
sites files of each size (new site names each time, so every apply creates its blocks and
deployments), then applies the middle-sized file once more (an update: everything exists). A
1-site apply measures the fixed cost (interpreter, imports, connecting), so that the growth is
judged on the rest: per-site seconds at each size, and the exponent k of time ~ sites^k
between the two largest sizes (1.0 is linear).

Prints one JSON object. Target (issue 6): growing linearly.

    /work/venv/bin/python bench/bench_sites_apply.py [--sizes 10,100,500] [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import tempfile
import time
from pathlib import Path

from _harness import bench, machine, pg_database, sites_yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--sizes", default="10,100,500", help="site counts, comma-separated")
    parser.add_argument("--postgres", action="store_true", help="Prefect server on PostgreSQL")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="axtrace-bench-sites-") as tmp, \
            (pg_database() if args.postgres else contextlib.nullcontext()) as db, \
            bench(Path(tmp)) as run:
        run.start_prefect(database=db)
        workdir = run.workdir

        def apply(count: int, prefix: str) -> tuple[Path, float]:
            path = sites_yaml(workdir, [f"{prefix}-{i:04d}" for i in range(count)])
            return path, run.cli("sites", "apply", str(path))

        apply(1, "warm")
        _, fixed = apply(1, "fixed")
        times, files = {}, {}
        for size in sizes:
            files[size], times[size] = apply(size, f"n{size}")
        again = sorted(sizes)[len(sizes) // 2]
        update = run.cli("sites", "apply", str(files[again]))
        run.close()
    per_site = {str(n): round((t - fixed) / n, 4) for n, t in times.items()}
    small, large = sorted(sizes)[-2:]
    exponent = math.log((times[large] - fixed) / (times[small] - fixed)) / math.log(large / small)
    print(json.dumps({
        "benchmark": "sites_apply", "machine": info,
        "config": {"sizes": sizes, "prefect_database": "postgresql" if args.postgres
                   else "sqlite"},
        "fixed_cost_s": round(fixed, 2),
        "apply_s": {str(n): round(t, 2) for n, t in times.items()},
        "seconds_per_site_beyond_fixed": per_site,
        f"reapply_{again}_s": round(update, 2),
        "growth_exponent": round(exponent, 3),
        "reading": {"linear": 0.8 <= exponent <= 1.2},
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
