"""How fast a host notices a moved pointer, and what an idle host costs (issue 23).

Runs one host of a deployed sandbox environment as its systemd unit does on EC2:
templates/host/reconcile.py --watch, a process on this machine against the sandbox's
emulator and the shared Docker engine (the same command as the sandbox's local
convergence, plus --watch). Then:

- wave start latency: damso's release store moves the role's pointer between two releases
  (as a rollout wave does), at a random moment of the host's check period, and the time runs
  from just before that PUT to the host's line "reconciling (... changed)" read from its
  stderr. Each move's reconcile runs to its report before the next move.
- idle cost: with nothing moving, the host's CPU (the process and the docker / compose
  commands it waited for, from /proc; the Docker engine's own work is not in it) and its S3
  requests (the emulator's request log) over whole periods (from the end of one periodic full
  run to the end of the third after it, about 3 minutes), scaled to an hour.
  Measured twice: as installed (checks every few seconds and the full run every minute) and
  the pointer checks alone (the periodic run off). For scale, the timer of before ran the
  one-shot script every minute: one such run's CPU, times 60.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import subprocess
import threading
import time
from pathlib import Path

SSM_OR_ROUTE53 = ("/2013-04-01/",)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and of its children waited for so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


class Watcher:
    """reconcile.py --watch as a child process; its stderr lines with the time each arrived."""

    def __init__(self, argv: list[str], env: dict, cwd: Path, stdout=None) -> None:
        """stdout=subprocess.PIPE: the caller reads the child's stdout (process.stdout)."""
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True)
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_line(self, pattern: str, after: int, timeout: float = 300) -> tuple[int, float]:
        """(index, arrival time) of the first line from index `after` on that matches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in range(after, len(self.lines)):
                if re.search(pattern, self.lines[n][1]):
                    return n, self.lines[n][0]
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        tail = "\n".join(line for _, line in self.lines[-20:])
        raise RuntimeError(f"the host's watch printed no line matching {pattern!r}:\n{tail}")

    def read_to_end(self, timeout: float = 10) -> None:
        """After the child exited: wait until its last stderr line is in self.lines."""
        self._thread.join(timeout=timeout)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def s3_requests(new: list[tuple[str, str, str]]) -> dict:
    s3 = [(m, p, s) for m, p, s in new if p != "/" and not p.startswith(SSM_OR_ROUTE53)]
    checks = [r for r in s3 if r[0] == "GET" and r[1].endswith("/current")]
    return {"s3": len(s3), "pointer_checks": len(checks), "not_modified": sum(1 for r in checks if r[2] == "304"),
            "puts": sum(1 for r in s3 if r[0] == "PUT"), "other": len(new) - len(s3)}  # fmt: skip


def measure(project: Path, env_name: str, env: dict, requests, releases: tuple[str, str], moves: int = 10,
            periods: int = 3, checks_only: float = 60.0) -> dict:  # fmt: skip
    """requests(): (method, path, status) of every request the emulator logged so far.
    releases: (the one the environment runs now, another one to move to and back)."""
    from damso_ops import config
    from damso_ops.deploy import converge, target as targets

    target = targets.connect(config.load(project / "damso.toml"), env_name)
    store = target.store()
    reports = store.reports()
    role = "api"
    instance = next(i for i, r in sorted(reports.items()) if r.get("role") == role)
    command = converge.reconcile_command(target, role, instance, store.bucket)
    child_env = {**env, **command.env}
    pointer = re.escape(f"{env_name}/roles/{role}/current changed")

    # The one-shot run, as the timer ran it every minute: its CPU (it finds the release applied).
    before = os.times()
    subprocess.run(command.argv, env=child_env, cwd=command.cwd, capture_output=True, check=False)
    after = os.times()
    one_shot_cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)

    watcher = Watcher([*command.argv, "--watch"], child_env, command.cwd)
    try:
        seen, _ = watcher.wait_line(r"damso-reconcile: \S+ (healthy|unhealthy|failed|rejected)", 0)
        latencies = []
        now_release, other = releases
        for n in range(moves):
            time.sleep(random.uniform(0.5, 5.5))  # any moment of the check period
            now_release, other = other, now_release
            began = time.monotonic()
            store.set_role_release(role, now_release)
            seen, started = watcher.wait_line(pointer, seen + 1)
            latencies.append(started - began)
            seen, _ = watcher.wait_line(rf"damso-reconcile: {re.escape(now_release)} (healthy|unhealthy|failed)", seen + 1)
        if now_release != releases[0]:  # back where the environment was
            store.set_role_release(role, releases[0])
            seen, _ = watcher.wait_line(rf"damso-reconcile: {re.escape(releases[0])} ", seen + 1)

        # Idle from here: whole periods, from the end of one periodic run to the end of the `periods`-th after it.
        seen, _ = watcher.wait_line(r"reconciling \(every", seen + 1)
        seen, _ = watcher.wait_line(r"run ended", seen + 1)
        logged, cpu, start = len(requests()), cpu_seconds(watcher.process.pid), time.monotonic()
        for _ in range(periods):
            seen, _ = watcher.wait_line(r"reconciling \(every", seen + 1)
            seen, _ = watcher.wait_line(r"run ended", seen + 1)
        window = time.monotonic() - start
        idle_cpu = cpu_seconds(watcher.process.pid) - cpu
        idle_requests = s3_requests(requests()[logged:])
        full_runs = periods
    finally:
        watcher.stop()

    checker = Watcher([*command.argv, "--watch", "--period", "86400"], child_env, command.cwd)
    try:
        checker.wait_line(r"run ended", 0)  # its run at start
        logged, cpu, start = len(requests()), cpu_seconds(checker.process.pid), time.monotonic()
        time.sleep(checks_only)
        checks_window = time.monotonic() - start
        checks_cpu = cpu_seconds(checker.process.pid) - cpu
        checks_requests = s3_requests(requests()[logged:])
    finally:
        checker.stop()

    per_hour, checks_per_hour = 3600 / window, 3600 / checks_window
    return {
        "role": role, "instance": instance, "moves": moves, "latencies_s": latencies,
        "latency_p50_s": statistics.median(latencies), "latency_max_s": max(latencies),
        "idle_window_s": window, "idle_full_runs": full_runs,
        "idle_cpu_s_per_hour": idle_cpu * per_hour,
        "idle_s3_per_hour": idle_requests["s3"] * per_hour,
        "idle_pointer_checks_per_hour": idle_requests["pointer_checks"] * per_hour,
        "idle_not_modified_per_hour": idle_requests["not_modified"] * per_hour,
        "idle_s3_puts_per_hour": idle_requests["puts"] * per_hour,
        "idle_other_aws_per_hour": idle_requests["other"] * per_hour,
        "checks_window_s": checks_window,
        "checks_cpu_s_per_hour": checks_cpu * checks_per_hour,
        "checks_s3_per_hour": checks_requests["s3"] * checks_per_hour,
        "timer_cpu_s_per_hour": one_shot_cpu * 60,
    }  # fmt: skip


def lines(w: dict) -> list[str]:
    lat = ", ".join(f"{x:.2f}" for x in w["latencies_s"])
    return [
        f"wave start latency ({w['moves']} moves of role {w['role']}'s pointer; pointer PUT -> host's reconcile starts): "
        f"p50 {w['latency_p50_s']:.2f} s, max {w['latency_max_s']:.2f} s  [{lat}]",
        f"idle host as installed, measured over {w['idle_window_s']:.0f} s and scaled to an hour "
        f"({w['idle_full_runs']} periodic full runs in it): {w['idle_s3_per_hour']:.0f} S3 requests/h "
        f"({w['idle_pointer_checks_per_hour']:.0f} pointer GETs, {w['idle_not_modified_per_hour']:.0f} of them 304; "
        f"{w['idle_s3_puts_per_hour']:.0f} PUTs), {w['idle_other_aws_per_hour']:.0f} SSM requests/h, "
        f"{w['idle_cpu_s_per_hour']:.1f} CPU s/h",
        f"the pointer checks alone (no periodic run), over {w['checks_window_s']:.0f} s, scaled: "
        f"{w['checks_s3_per_hour']:.0f} S3 requests/h, {w['checks_cpu_s_per_hour']:.1f} CPU s/h; "
        f"the old timer's one-shot run every minute: {w['timer_cpu_s_per_hour']:.1f} CPU s/h",
    ]  # fmt: skip
