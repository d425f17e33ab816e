"""Apply overhead and re-plan: orch against Terraform on the same graph of no-op steps.

    python bench/apply_vs_terraform.py --shape fleet --size 5000

orch applies fake steps of zero duration, every intent and outcome journaled durably
(SQLite, WAL, synchronous=FULL); Terraform applies ``terraform_data`` resources (it rewrites
the whole state file per resource). Then both plan again with nothing changed. orch is
also applied at a quarter and a half of the size, to show how its time grows. The last
line is machine-readable.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import REPO, measure, orch_cmd, prepare, steps_of, terraform, tf_env


def orch_apply(orch_dir: Path, tag: str) -> tuple[float, float, float]:
    profile = str(orch_dir / "profile.yaml")
    state = str(orch_dir / f"{tag}.db")
    a = measure(orch_cmd("apply", profile, "--state", state, "--auto-approve",
                         "--parallelism", "16"), cwd=REPO)
    if "succeeded, 0 failed" not in a.stderr:
        raise SystemExit(f"orch apply did not complete:\n{a.stderr[-1500:]}")
    replans = [measure(orch_cmd("plan", profile, "--state", state, "--detailed-exitcode"),
                       cwd=REPO) for _ in range(3)]
    if any(r.returncode != 0 for r in replans):
        raise SystemExit("re-plan after apply found changes")
    best = min(replans, key=lambda m: m.seconds)
    return a.seconds, best.seconds, a.peak_rss_mib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", choices=["fleet", "chain"], default="fleet")
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--skip-terraform", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        growth = []
        for frac in (4, 2, 1):
            size = max(10, args.size // frac)
            orch_dir, _ = prepare(Path(tmp) / f"n{size}", args.shape, size)
            apply_s, replan_s, rss = orch_apply(orch_dir, f"s{size}")
            steps = steps_of(args.shape, size)
            growth.append((steps, apply_s))
            print(f"orch apply:      {steps} steps: {apply_s:.3f} s "
                  f"({apply_s / steps * 1e6:.0f} µs/step), peak RSS {rss:.0f} MiB; "
                  f"re-plan {replan_s:.3f} s")
        steps, orch_s = growth[-1]
        if args.skip_terraform:
            tf_apply = tf_replan = float("nan")
        else:
            _, tf_dir = prepare(Path(tmp) / "tf", args.shape, args.size)
            a = measure([terraform(), "apply", "-input=false", "-no-color", "-auto-approve"],
                        cwd=tf_dir, env=tf_env(), timeout=7200)
            r = measure([terraform(), "plan", "-input=false", "-no-color",
                         "-detailed-exitcode"], cwd=tf_dir, env=tf_env())
            tf_apply, tf_replan = a.seconds, r.seconds
            print(f"terraform apply: {steps} resources: {tf_apply:.3f} s; "
                  f"re-plan {tf_replan:.3f} s (exit {r.returncode})")
        per_step = [t / n for n, t in growth]
        print(f"orch growth: µs/step at {', '.join(str(n) for n, _ in growth)} steps = "
              f"{', '.join(f'{p * 1e6:.0f}' for p in per_step)} "
              f"(linear if roughly constant)")
        replan_orch = apply_s_replan = replan_s
        print(f"shape={args.shape} size={steps} orch_s={orch_s:.3f} terraform_s={tf_apply:.3f} "
              f"ratio={orch_s / tf_apply:.4f} replan_orch_s={replan_orch:.3f} "
              f"replan_terraform_s={tf_replan:.3f} "
              f"replan_ratio={apply_s_replan / tf_replan:.4f}")


if __name__ == "__main__":
    main()
