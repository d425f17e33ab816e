"""Plan time and peak memory: orch against Terraform on the same graph.

    python bench/plan_vs_terraform.py --shape fleet --size 10000
    python bench/plan_vs_terraform.py --shape chain --size 5000

Both plan from an empty state and save the plan (``orch plan --out``, ``terraform plan
-out``), printing to /dev/null. orch is run ``--repeat`` times and the best is kept (the
machine has two cores and other work on it); Terraform once, because one run of it is long.
The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import REPO, measure, orch_cmd, prepare, steps_of, terraform, tf_env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", choices=["fleet", "chain"], default="fleet")
    ap.add_argument("--size", type=int, default=10000, help="steps in the graph")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-terraform", action="store_true",
                    help="measure orch only (terraform_s=nan)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        orch_dir, tf_dir = prepare(Path(tmp), args.shape, args.size)
        steps = steps_of(args.shape, args.size)
        runs = []
        for i in range(args.repeat):
            state = orch_dir / f"state{i}.db"
            runs.append(measure(orch_cmd("plan", str(orch_dir / "profile.yaml"), "--state",
                                         str(state), "--out", str(orch_dir / "plan.json")),
                                cwd=REPO))
        best = min(runs, key=lambda m: m.seconds)
        print(f"orch plan:      {steps} steps, best of {args.repeat}: {best.seconds:.3f} s, "
              f"peak RSS {best.peak_rss_mib:.0f} MiB "
              f"(all runs: {', '.join(f'{m.seconds:.3f}' for m in runs)})")
        if args.skip_terraform:
            tf_s, tf_mib = float("nan"), float("nan")
        else:
            m = measure([terraform(), "plan", "-input=false", "-no-color", "-out=tf.plan"],
                        cwd=tf_dir, env=tf_env())
            tf_s, tf_mib = m.seconds, m.peak_rss_mib
            print(f"terraform plan: {steps} resources: {tf_s:.3f} s, peak RSS {tf_mib:.0f} MiB")
        ratio = best.seconds / tf_s if tf_s == tf_s else float("nan")
        print(f"shape={args.shape} size={steps} orch_s={best.seconds:.3f} "
              f"terraform_s={tf_s:.3f} ratio={ratio:.4f} orch_rss_mib={best.peak_rss_mib:.0f} "
              f"terraform_rss_mib={tf_mib:.0f}")


if __name__ == "__main__":
    main()
