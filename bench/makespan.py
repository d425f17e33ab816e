"""Makespan against the critical path: how close the executor comes to the ideal schedule.

    python bench/makespan.py --nodes 40 --parallelism 64

A fleet graph of fake steps with random durations (seeded), parallelism at least the
graph's width. The ideal makespan is the critical path (the longest chain of durations);
the ratio measured/ideal shows the executor's scheduling overhead. The last line is
machine-readable.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from orchestrator import log
from orchestrator.driver import DriverRegistry
from orchestrator.executor import ExecOptions, Executor
from orchestrator.plan import Action, Mode, Plan, PlannedStep
from orchestrator.state import open_store
from orchestrator.step import Step


def fleet(nodes: int, rng: random.Random, lo: float, hi: float) -> list[Step]:
    steps = []
    for n in range(1, nodes + 1):
        prev = None
        for name in ("power", "os.install"):
            sid = f"node-{n}/{name}"
            steps.append(Step(sid, "fake.step", "fake", name, "l",
                              inputs={"duration": round(rng.uniform(lo, hi), 3)},
                              depends_on=(prev,) if prev else ()))
            prev = sid
    steps.append(Step("cluster.bootstrap", "fake.step", "fake", "bootstrap", "l",
                      inputs={"duration": round(rng.uniform(lo, hi), 3)},
                      depends_on=tuple(f"node-{n}/os.install" for n in (1, 2, 3))))
    for n in range(1, nodes + 1):
        steps.append(Step(f"node-{n}/cluster.join", "fake.step", "fake", "join", "l",
                          inputs={"duration": round(rng.uniform(lo, hi), 3)},
                          depends_on=(f"node-{n}/os.install", "cluster.bootstrap")))
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=40)
    ap.add_argument("--parallelism", type=int, default=0, help="default: the graph's width")
    ap.add_argument("--min", type=float, default=0.5)
    ap.add_argument("--max", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    log.configure(level="warning")
    steps = fleet(args.nodes, random.Random(args.seed), args.min, args.max)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "s.db"))
        plan = Plan("makespan", Mode.NORMAL,
                    tuple(PlannedStep(s, Action.CREATE, "bench") for s in steps),
                    state_hash=store.state_hash("makespan"),
                    driver_settings={"fake": {"endpoint_limit": 1000}})
        width = args.parallelism or args.nodes + 1
        ideal = plan.graph().longest_path(lambda sid: plan.by_id_cached[sid].step.inputs[
            "duration"])
        t0 = time.monotonic()
        report = Executor(plan, store, DriverRegistry(), ExecOptions(parallelism=width)).run()
        wall = time.monotonic() - t0
        assert report.ok
    print(f"{len(steps)} steps, parallelism {width}: makespan {wall:.3f} s, "
          f"critical path {ideal:.3f} s")
    print(f"shape=fleet size={len(steps)} makespan_s={wall:.3f} critical_path_s={ideal:.3f} "
          f"ratio={wall / ideal:.4f}")


if __name__ == "__main__":
    main()
