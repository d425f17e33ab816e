"""The fault suite's crash trials, N times: kill -9 at seeded random moments, then resume.

    python bench/faults.py --trials 50 --backend both

Each trial (see tests/faults/harness.py) starts a real ``orch apply`` (two in three trials;
every other one also kills the resume) or ``orch destroy`` of a 12-step graph, kills it
with SIGKILL at a random moment, resumes it to the end, and checks: no step's driver called
twice except in the at-least-once window (a step left pending: intent journaled, outcome
not), nothing lost, the records equal a clean run's, no traceback, run records true.
PostgreSQL needs ``--dsn`` or ORCH_TEST_POSTGRES_DSN. The last line is machine-readable:
``trials=… double=… lost=… tracebacks=…``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.faults import harness as h  # noqa: E402


def trials(backend: str, n: int, seed0: int, dsn: str, verbose: bool) -> list[h.Outcome]:
    out: list[h.Outcome] = []
    made: list[str] = []

    def new_url(tmp: Path, name: str) -> str:
        if backend == "sqlite":
            return str(tmp / f"{name}.db")
        url = h.pg_schema_url(dsn)
        made.append(url)
        return url

    with tempfile.TemporaryDirectory(prefix="orch-faults-") as d:
        tmp = Path(d)
        try:
            reference = h.clean_records(tmp, new_url(tmp, "clean"))
            for i in range(n):
                kind = "destroy" if i % 3 == 2 else "apply"
                work = tmp / f"t{i}"
                work.mkdir()
                t0 = time.monotonic()
                o = h.crash_trial(kind, seed0 + i, work, new_url(work, "state"),
                                  {} if kind == "destroy" else reference)
                o.name = f"{backend}:{o.name}"
                out.append(o)
                if verbose or o.problems:
                    print(f"{o.name:<22} {time.monotonic() - t0:5.1f} s  "
                          f"window={o.interrupted} "
                          + ("ok" if not o.problems else "\n  ".join(o.problems)),
                          flush=True)
        finally:
            for url in made:
                h.drop_pg_schema(dsn, url)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=50, help="trials per backend")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    ap.add_argument("--seed", type=int, default=1000, help="first trial's seed")
    ap.add_argument("--dsn", default=os.environ.get("ORCH_TEST_POSTGRES_DSN", ""),
                    help="PostgreSQL database for the postgres backend")
    ap.add_argument("-v", "--verbose", action="store_true", help="a line per trial")
    args = ap.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if "postgres" in backends and not args.dsn:
        raise SystemExit("--backend postgres needs --dsn or ORCH_TEST_POSTGRES_DSN")
    outcomes: list[h.Outcome] = []
    t0 = time.monotonic()
    for b in backends:
        mine = trials(b, args.trials, args.seed, args.dsn, args.verbose)
        print(f"{b}: {h.summary_line(mine)}", flush=True)
        outcomes += mine
    print(f"wall={time.monotonic() - t0:.0f}s backends={','.join(backends)}")
    print(h.summary_line(outcomes))


if __name__ == "__main__":
    main()
