"""A three-wave app-only rollout vs the sum of its hosts' own pull + start + health time (issue 23).

Every host of a deployed sandbox environment runs as on EC2: templates/host/reconcile.py --watch,
one process per role instance on this machine, against the sandbox's emulator and the shared
Docker engine (the same commands as the sandbox's local convergence, plus --watch). Once each
host has reported the release it runs and is idle, the environment gets waves
(rollout = [["livekit"], ["api"], ["web"], ["agent"]]) and api, web and agent a new APP_MESSAGE;
then `damso deploy ENV --only api --only web --only agent --yes --json`, without
--converge-local, timed from its start to its exit: damso moves the role pointers wave by wave
and waits for the hosts' reports. --only keeps the rollout at the three changed roles: a deploy
of every role would move livekit too (its files unchanged, but the release is a new one, and an
unchanged role's wave is not skipped), in a fourth wave.

Against it: each host's report of the new release carries the seconds of its compose pull,
compose up and wait for health ("seconds"); per wave the slowest host's sum of the three, summed
over the waves. The rest of the rollout's time is damso's (start-up, the stacks' check, the
release's upload, moving pointers, polling reports every 2 s) and the hosts' (noticing a pointer
within 4 s, downloading the release, writing its secrets, reporting). damso's own lines
(stderr, read as they come) split it: until wave 1 starts, then each wave until the next
starts (the last one until damso exits).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from watch_bench import Watcher

WAVES = [["livekit"], ["api"], ["web"], ["agent"]]
CHANGED = ["api", "web", "agent"]
GOAL = 1.3  # rollout time / the sum of its hosts' own pull + start + health


def config(toml: str, env_name: str, message: str | None = None) -> str:
    """One environment's damso.toml text with the bench's waves; with message, api, web and
    agent get a new APP_MESSAGE (livekit keeps its own)."""
    header = f"[environments.{env_name}]\n"
    toml = toml.replace(header, header + f"rollout = {json.dumps(WAVES)}\n", 1)
    if message is not None:
        roles = "|".join(CHANGED)
        toml = re.sub(rf'APP_MESSAGE = "[^"]*from ({roles})"', rf'APP_MESSAGE = "{message} from \1"', toml)
    return toml


def _deploy(argv: list[str], cwd: Path, env: dict) -> tuple[dict, float, list[tuple[float, str]]]:
    """Run damso deploy; (its JSON, its wall seconds, its stderr lines with the seconds since its start)."""
    began = time.monotonic()
    deploy = Watcher(argv, env, cwd, stdout=subprocess.PIPE)
    try:
        out = deploy.process.stdout.read()
        deploy.process.wait()
    except BaseException:
        deploy.process.kill()
        deploy.process.wait()
        raise
    seconds = time.monotonic() - began
    deploy.read_to_end()
    if deploy.process.returncode != 0:
        tail = "\n".join(line for _, line in deploy.lines[-40:])
        raise RuntimeError(f"{' '.join(argv[2:])} failed (exit {deploy.process.returncode}):\n{tail}")
    return json.loads(out), seconds, [(t - began, line) for t, line in deploy.lines]


def measure(project: Path, env_name: str, env: dict, write_config, message: str = "rollout") -> dict:
    """write_config(transform): damso.toml again, the environment's text passed through transform.
    The environment runs a release on every host (a deploy with --converge-local before)."""
    from damso_ops import config as damso_config
    from damso_ops.deploy import converge, target as targets

    target = targets.connect(damso_config.load(project / "damso.toml"), env_name)
    store = target.store()
    hosts = sorted((r["role"], i) for i, r in store.reports().items() if r.get("role"))
    watchers: dict[str, Watcher] = {}
    try:
        for role, instance in hosts:
            command = converge.reconcile_command(target, role, instance, store.bucket)
            watchers[instance] = Watcher([*command.argv, "--watch"], {**env, **command.env}, command.cwd)
        seen = {}
        for role, instance in hosts:  # idle: its run at start found the release it runs and reported it healthy
            release = re.escape(store.desired(role, instance) or "?")
            n, _ = watchers[instance].wait_line(rf"damso-reconcile: {release} (healthy|unhealthy|failed|rejected)", 0)
            if not watchers[instance].lines[n][1].endswith(" healthy"):
                raise RuntimeError(f"{role} ({instance}) is not healthy before the rollout: {watchers[instance].lines[n][1]}")
            seen[instance], _ = watchers[instance].wait_line(r"run ended", n + 1)

        write_config(lambda text: config(text, env_name, message))
        only = [arg for role in CHANGED for arg in ("--only", role)]
        data, seconds, lines = _deploy([sys.executable, "-m", "damso_ops", "deploy", env_name, *only, "--yes", "--json"],
                                       project, env)  # fmt: skip
    finally:
        for watcher in watchers.values():  # each by its own process (Popen.terminate: its pid)
            watcher.stop()

    release, waves = data["release"], data["rollout"]["waves"]
    per_host = {}
    for instance, report in data["instances"].items():
        took = report.get("seconds")
        if report.get("running") != release or report.get("status") != "healthy" or not took:
            raise RuntimeError(f"{instance}'s report is not a healthy run of {release} with its seconds: {report}")
        per_host[instance] = {"role": report["role"], **took, "total": took["pull"] + took["start"] + took["health"]}
    starts = [t for t, line in lines if re.match(r"rollout: wave \d+/\d+:", line)]
    if len(starts) != len(waves):
        raise RuntimeError(f"damso printed {len(starts)} wave lines for {len(waves)} waves:\n"
                           + "\n".join(line for _, line in lines[-40:]))  # fmt: skip
    ends = starts[1:] + [seconds]
    rows = []
    for n, wave in enumerate(waves):
        mine = {i: h for i, h in per_host.items() if h["role"] in wave}
        slowest = max(mine, key=lambda i: mine[i]["total"])
        rows.append({"roles": wave, "wall_s": ends[n] - starts[n], "slowest": slowest, **mine[slowest]})
    hosts_s = sum(r["total"] for r in rows)
    return {
        "release": release, "waves": waves, "rollout_s": seconds, "hosts_s": hosts_s, "ratio": seconds / hosts_s,
        "before_waves_s": starts[0], "per_wave": rows, "per_host": per_host, "goal": GOAL,
        "watchers": len(hosts), "stacks_applied": sum(1 for s in data["stacks"].values() if s["applied"]),
        "deploy_lines": [f"{t:6.1f} {line}" for t, line in lines],  # damso's stderr, seconds since its start
    }  # fmt: skip


def lines(r: dict) -> list[str]:
    out = [
        f"{len(r['waves'])}-wave app-only rollout ({' -> '.join('+'.join(w) for w in r['waves'])}; {r['watchers']} hosts "
        f"running reconcile.py --watch; damso deploy --only, without --converge-local, start to exit): "
        f"{r['rollout_s']:.1f} s",
        f"  the sum over its waves of the slowest host's own pull + start + health: {r['hosts_s']:.1f} s; "
        f"ratio {r['ratio']:.2f}x (goal <= {r['goal']:g}x: {'met' if r['ratio'] <= r['goal'] else 'NOT MET'})",
        f"  {r['before_waves_s']:5.1f} s  until wave 1 starts (start-up, the stacks' check, the release's upload; "
        f"{r['stacks_applied']} stacks applied)",
    ]
    for n, w in enumerate(r["per_wave"], 1):
        out.append(f"  {w['wall_s']:5.1f} s  wave {n} ({'+'.join(w['roles'])}): its slowest host {w['slowest']} "
                   f"pull {w['pull']:.1f} + start {w['start']:.1f} + health {w['health']:.1f} = {w['total']:.1f} s")
    return out
