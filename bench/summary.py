"""The table of issues 14 and 23 from one `make bench` run: every measure, its goal, met or not.

Issue 23's lines too: the host's watch (wave start latency, an idle host's cost) and a
three-wave app-only rollout vs the sum of its hosts' own pull + start + health time.

Usage: python3 bench/summary.py BUILD.json DEPLOY.json (written by build_bench.py and
deploy_bench.py with --json). A missing file leaves its rows out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load(path: str) -> dict:
    p = Path(path)
    text = p.read_text() if p.exists() else ""
    return json.loads(text) if text.strip() else {}


def main(build_path: str, deploy_path: str) -> None:
    built, deployed = load(build_path), load(deploy_path)
    rows: list[tuple[str, str, str, bool | None]] = []  # measure, measured, goal, met (None: no goal)
    if "noop_s" in deployed:
        d = deployed
        rows.append(("no-op re-deploy / first deploy (sandbox, 5 stacks, 4 hosts)",
                     f"{d['noop_s']:.1f} s / {d['first_s']:.1f} s = {d['noop_ratio']:.3f}", "<= 0.10",
                     d["noop_ratio"] <= 0.10))
        rows.append(("  the same in CPU time (damso and its children)",
                     f"{d['noop_cpu_s']:.1f} s / {d['first_cpu_s']:.1f} s = {d['noop_cpu_s'] / d['first_cpu_s']:.3f}", "-",
                     None))
        rows.append(("S3 PUTs in a no-op deploy (every bucket)", f"{d['noop_puts']} (DELETEs: {d['noop_deletes']})",
                     "0", d["noop_puts"] == 0))
        rows.append(("app-only deploy / first deploy", f"{d['app_only_s']:.1f} s / {d['first_s']:.1f} s", "-", None))
        rows.append(("serial / parallel first deploy (--jobs 1 vs 4)",
                     f"{d['serial_s']:.1f} s / {d['parallel_s']:.1f} s = {d['serial_s'] / d['parallel_s']:.2f}x", "-",
                     None))
    if deployed.get("watch"):
        w = deployed["watch"]
        rows.append((f"wave start latency: role pointer moved -> host's reconcile starts ({w['moves']} moves, sandbox)",
                     f"p50 {w['latency_p50_s']:.2f} s, max {w['latency_max_s']:.2f} s", "max <= 5 s",
                     w["latency_max_s"] <= 5))
        rows.append((f"an idle host's S3 requests per hour (over {w['idle_window_s']:.0f} s, scaled)",
                     f"{w['idle_s3_per_hour']:.0f} ({w['idle_not_modified_per_hour']:.0f} answered 304)", "-", None))
        rows.append((f"an idle host's CPU seconds per hour (over {w['idle_window_s']:.0f} s, scaled)",
                     f"{w['idle_cpu_s_per_hour']:.1f} s (pointer checks alone {w['checks_cpu_s_per_hour']:.1f} s)", "-",
                     None))
    if deployed.get("rollout"):
        r = deployed["rollout"]
        waves = {3: "three"}.get(len(r["waves"]), str(len(r["waves"])))
        rows.append((f"{waves}-wave app-only rollout / sum of its hosts' pull + start + health",
                     f"{r['rollout_s']:.1f} s / {r['hosts_s']:.1f} s = {r['ratio']:.2f}x", f"<= {r['goal']:g}x",
                     r["ratio"] <= r["goal"]))
    if "build" in built:
        b = built["build"]
        ratio = b["old_s"] / b["noop_s"]
        rows.append((f"no-op rebuild vs the old way ({b['services']} images)",
                     f"{b['old_s']:.2f} s / {b['noop_s']:.2f} s = {ratio:.1f}x", ">= 20x", ratio >= 20))
        rows.append((f"cold build --jobs 1 vs --jobs 4 ({b['services']} images)",
                     f"{b['cold_seq_s']:.1f} s / {b['cold_par_s']:.1f} s = {b['cold_seq_s'] / b['cold_par_s']:.1f}x",
                     "-", None))
    if "cache" in built:
        c = built["cache"]
        rows.append((f"cold rebuild after a one-line change, registry cache vs none ({c['services']} images, "
                     f"{len(c['rebuilt'])} rebuilt)",
                     f"{c['with_s']:.1f} s / {c['without_s']:.1f} s = {c['ratio']:.2f}x", "<= 0.3x", c["ratio"] <= 0.3))
    if "fetch" in built:
        f = built["fetch"]
        t, n = f["clone_s"] / f["damso_s"], f["clone_bytes"] / f["damso_bytes"]
        rows.append(("fetch 1 commit vs full clone: time",
                     f"{f['clone_s']:.2f} s / {f['damso_s']:.2f} s = {t:.1f}x", ">= 10x", t >= 10))
        rows.append(("  the same in CPU time (git at both ends, and Python)",
                     f"{f['clone_cpu_s']:.2f} s / {f['damso_cpu_s']:.2f} s = {f['clone_cpu_s'] / f['damso_cpu_s']:.1f}x",
                     "-", None))
        rows.append(("fetch 1 commit vs full clone: bytes transferred",
                     f"{f['clone_bytes'] / 1e6:.1f} MB / {f['damso_bytes'] / 1e6:.1f} MB = {n:.1f}x", ">= 10x", n >= 10))
    widths = [max(len(r[i]) for r in rows + [("measure", "measured", "goal", None)]) for i in range(3)]
    line = f"{'measure':{widths[0]}}  {'measured':{widths[1]}}  {'goal':{widths[2]}}  result"
    print("\nissue 14 and 23 figures, all from this run")
    print(line)
    print("-" * len(line))
    for measure, measured, goal, met in rows:
        result = "-" if met is None else ("met" if met else "NOT MET")
        print(f"{measure:{widths[0]}}  {measured:{widths[1]}}  {goal:{widths[2]}}  {result}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
