#!/usr/bin/env python3
"""damso reconcile unit: make this host run its environment's current release.

Installed by user-data; runs as the service damso-reconcile (--watch, at the end). Standard library
plus boto3 (Ubuntu's python3-boto3). Reads /etc/damso/host.env:
DAMSO_ENV, DAMSO_ROLE, DAMSO_BUCKET, AWS_REGION [, DAMSO_INSTANCE_ID,
DAMSO_WORKDIR, AWS_ENDPOINT_URL and DAMSO_IMDS_URL for an emulator]. The health
timeout comes with each release (manifest.json "settings"), so user-data never changes.

Steps: read <env>/current; download this role's files of that release; verify
every sha256 (a mismatch keeps the running release and is reported); write the
role's SSM secrets to an env file (0600; the compose env_file, so never the
registry credentials); fill each X.in into X (0600) with those secrets and
${NODE_IP} (instance metadata, IMDSv2); write the role's secret files from SSM
(secret-files/NAME, 0600, mounted read-only by a compose override file); docker login
if the role has REGISTRY_USERNAME/REGISTRY_PASSWORD (only this login sees them);
compose pull; the release tasks (tasks.json), on the one host damso assigned them to
and once per release (their record is <env>/tasks/<release>/<role>.json; a failed task
keeps the running release and fails the run; the role's other hosts wait until they are
done); compose up; wait for health (a container labelled damso.task is one-shot: exit 0
is done, not a crash); write a report to <env>/reports/<instance-id>.json (for a release it
applied, "seconds": of compose pull, of compose up and of the wait for health). A run that
finds the release already applied fills the X.in files again (the node's address
may have changed) and restarts the containers that mount a file whose content
changed. Every run that keeps a release (the applied one, or after a rejected one)
starts its containers that are not running (an engine restart stops those without
a restart policy) and touches no running container. After each run, the files holding secrets (secrets.env, X filled from X.in)
of every release but the applied one are overwritten and removed, and only the
KEEP_RELEASES newest release folders stay: a rollback downloads its release again.
"""

import hashlib
import json
import os
import re
import shutil
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import boto3

TASKS_FILE = "tasks.json"  # [{name, image, command, timeout}], rendered by damso (deploy/render.py)
SECRET_FILES = "secret-files.json"  # [{name, path, services, uid}]; the contents come from SSM
SECRET_FILES_DIR = "secret-files"
OVERRIDE = "secret-files.compose.json"  # the compose override that mounts them, written here
TASK_LABEL = "damso.task"
KEEP_RELEASES = 3  # release folders kept (the applied one and the newest others), without their secrets
REGISTRY_CREDENTIALS = ("REGISTRY_USERNAME", "REGISTRY_PASSWORD")  # for docker login, never a container's env
LOG_LINES = 50  # every container's last lines go into each report, known secret values masked
LOG_LINE_CHARS = 500
MASK = "********"
GPU_REQUEST = re.compile(r"""(driver|runtime):\s*["']?nvidia""")
NO_NVIDIA = ("This host has no NVIDIA container runtime, so the GPU containers of role {role} cannot start: "
             "launch it from an NVIDIA GPU AMI (Deep Learning OSS Nvidia Driver AMI GPU PyTorch, Ubuntu 22.04) "
             "or install nvidia-container-toolkit.")


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# The environment's S3 layout, as damso_ops/deploy/store.py writes it (a contract test holds both).
def current_key(env):
    return f"{env}/current"


def release_key(env, release, name):
    """manifest.json, or ROLE/FILE, of a release."""
    return f"{env}/releases/{release}/{name}"


def report_key(env, instance):
    return f"{env}/reports/{instance}.json"


def task_key(env, release, role):
    return f"{env}/tasks/{release}/{role}.json"


def pointer_keys(env, role, instance):
    """Where this host learns its release, most specific first: its instance's pointer (a role
    with several instances moves one at a time), its role's (rollouts go wave by wave), the env's."""
    return [f"{env}/instances/{instance}/current", f"{env}/roles/{role}/current", current_key(env)]


def secrets_path(env, role):
    return f"/damso/{env}/{role}/"


def metadata(path):
    """One instance metadata value, with an IMDSv2 session token."""
    base = os.environ.get("DAMSO_IMDS_URL", "http://169.254.169.254/latest")
    req = urllib.request.Request(f"{base}/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    token = urllib.request.urlopen(req, timeout=5).read().decode()
    req = urllib.request.Request(f"{base}/meta-data/{path}", headers={"X-aws-ec2-metadata-token": token})
    return urllib.request.urlopen(req, timeout=5).read().decode()


def instance_id():
    return os.environ.get("DAMSO_INSTANCE_ID") or metadata("instance-id")


def node_ip():
    """The address clients reach this host at: its public IP (the Elastic IP), else its private one."""
    if os.environ.get("DAMSO_NODE_IP"):
        return os.environ["DAMSO_NODE_IP"]
    try:
        return metadata("public-ipv4")
    except urllib.error.HTTPError:
        return metadata("local-ipv4")


def fill(folder, values):
    """Write X (0600) from each release file X.in: ${NAME} from the role's secrets, ${NODE_IP}.
    Returns the paths of the files whose content changed."""
    changed = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".in"):
            continue
        with open(os.path.join(folder, name)) as fh:
            template = string.Template(fh.read())
        found = list(template.pattern.finditer(template.template))
        if any(m.group("invalid") is not None for m in found):
            raise RuntimeError(f"{name} has a '$' that is not a ${{NAME}} placeholder (write $$ for a literal one)")
        wanted = {m.group("named") or m.group("braced") for m in found} - {None}
        context = dict(values)
        if "NODE_IP" in wanted:
            context["NODE_IP"] = node_ip()
        missing = sorted(wanted - set(context))
        if missing:
            raise RuntimeError(f"{name} needs {', '.join(missing)}, which the role's SSM parameters do not hold")
        path, text = os.path.join(folder, name[:-len(".in")]), template.substitute(context)
        if os.path.exists(path):
            os.chmod(path, 0o600)
            with open(path) as fh:
                if fh.read() == text:
                    continue
        changed.append(path)
        # Rewritten in place: a container that bind-mounts the file sees the new content.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file was there before
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    return changed


def compose_cmd():
    if os.environ.get("DAMSO_COMPOSE"):
        return os.environ["DAMSO_COMPOSE"].split()
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
    return ["docker", "compose"] if probe.returncode == 0 else ["docker-compose"]


def has_nvidia_runtime():
    runtimes = sh(["docker", "info", "--format", "{{json .Runtimes}}"]).stdout
    return "nvidia" in runtimes or shutil.which("nvidia-container-runtime-hook") is not None


def client(session, service):
    """boto3 before 1.28 (Debian 12's, Ubuntu 22.04's) ignores AWS_ENDPOINT_URL: pass it on."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return session.client(service)
    from botocore.config import Config

    return session.client(service, endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def masked(text, secrets):
    for value in secrets:
        text = text.replace(value, MASK)
    return text


def secret_files(folder):
    """The files of a release folder that hold secret values: secrets.env, each X filled from X.in
    and the secret files."""
    names = set(os.listdir(folder))
    found = {"secrets.env"} & names | {n[:-len(".in")] for n in names if n.endswith(".in")} & names
    if os.path.isdir(os.path.join(folder, SECRET_FILES_DIR)):
        found |= {os.path.join(SECRET_FILES_DIR, n) for n in os.listdir(os.path.join(folder, SECRET_FILES_DIR))}
    return sorted(found)


def write_private(path, text, uid=0):
    """Write text to path (mode 0600) in place: a container that bind-mounts the file sees the new
    content. Returns whether the content changed."""
    if os.path.exists(path):
        os.chmod(path, 0o600)
        with open(path) as fh:
            if fh.read() == text:
                return False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    if uid and hasattr(os, "fchown"):
        os.fchown(fd, uid, uid)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return True


def read_json(path, default=None):
    if not os.path.exists(path):
        return default
    with open(path) as fh:
        return json.load(fh)


def shred(path):
    """Overwrite a file with zeros, then remove it (a removed secret is not left readable in place)."""
    try:
        size = os.path.getsize(path)
        with open(path, "r+b") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
        os.unlink(path)
    except FileNotFoundError:
        pass


def shred_folder(folder):
    for name in secret_files(folder):
        shred(os.path.join(folder, name))
    shutil.rmtree(folder, ignore_errors=True)


class Rejected(Exception):
    pass


class TaskFailed(Exception):
    """A release task exited non-zero (or timed out): the running release stays."""

    def __init__(self, message, record):
        super().__init__(message)
        self.record = record


class TasksElsewhere(Exception):
    """Another host of the role runs the release tasks: this one waits, on its running release."""


class Host:
    def __init__(self):
        self.env = os.environ["DAMSO_ENV"]
        self.role = os.environ["DAMSO_ROLE"]
        self.bucket = os.environ["DAMSO_BUCKET"]
        self.workdir = os.environ.get("DAMSO_WORKDIR", "/var/lib/damso")
        self.health_timeout = 600.0
        self.project = os.environ.get("DAMSO_COMPOSE_PROJECT") or f"damso-{self.env}-{self.role}"
        self.instance = instance_id()
        os.environ["DAMSO_INSTANCE_ID"] = self.instance  # compose names each container's log stream with it
        session = boto3.session.Session(region_name=os.environ.get("AWS_REGION"))
        self.s3 = client(session, "s3")
        self.ssm = client(session, "ssm")

    def get(self, key):
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def report(self, data):
        data.update(instance=self.instance, role=self.role, env=self.env, time=now())
        body = json.dumps(data, indent=2, sort_keys=True).encode()
        self.s3.put_object(Bucket=self.bucket, Key=report_key(self.env, self.instance), Body=body,
                           ContentType="application/json")
        print(f"damso-reconcile: {data['release']} {data['status']}", file=sys.stderr)

    def fetch(self, release):
        """Download and verify this role's files; return the release folder."""
        manifest = json.loads(self.get(release_key(self.env, release, "manifest.json")))
        files = manifest["roles"].get(self.role)
        if files is None:
            raise Rejected(f"release {release} has nothing for role {self.role}")
        self.settings(manifest)
        target = os.path.join(self.workdir, "releases", release)
        staging = target + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        for name, expected in sorted(files.items()):
            body = self.get(release_key(self.env, release, f"{self.role}/{name}"))
            actual = hashlib.sha256(body).hexdigest()
            if actual != expected:
                shutil.rmtree(staging, ignore_errors=True)
                raise Rejected(f"checksum mismatch for {self.role}/{name}: expected {expected}, got {actual}")
            with open(os.path.join(staging, name), "wb") as fh:
                fh.write(body)
        fill(staging, self.write_secrets(staging))
        self.write_secret_files(staging, target)
        shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
        return target, manifest

    def settings(self, manifest):
        settings = manifest.get("settings", {}).get(self.role, {})
        self.health_timeout = float(settings.get("health_timeout", self.health_timeout))

    def refresh(self, folder):
        """Fill the applied release's X.in files again: ${NODE_IP} is read on every run (an Elastic IP
        attached after the first run, a new public IP after a stop/start). Restart what mounts a changed file;
        start what does not run."""
        changed = fill(folder, self.write_secrets(folder)) + self.write_secret_files(folder, folder)
        users = [c["Id"] for c in self.containers() if any(m.get("Source") in changed for m in c.get("Mounts", []))]
        if users:
            print(f"damso-reconcile: {', '.join(map(os.path.basename, changed))} changed; restarting {len(users)} container(s)",
                  file=sys.stderr)
            out = sh(["docker", "restart", *users])
            if out.returncode != 0:
                raise RuntimeError(f"docker restart failed: {out.stderr.strip()[-2000:]}")
        self.keep_running(folder)

    def keep_running(self, folder):
        """Start the applied release's containers that are not running, and touch no running one.
        A restart of the Docker engine or of the host stops every container, and docker starts again
        only those whose compose file gives them a restart policy: without this, a service whose
        compose template has none stays down until the next release (also after a rejected one)."""
        containers = self.containers()
        stopped = [c["Name"].lstrip("/") for c in containers if c["State"]["Status"] in ("created", "exited")
                   and TASK_LABEL not in (c["Config"].get("Labels") or {})]  # a one-shot container that ran is done
        if containers and not stopped:
            return
        print(f"damso-reconcile: not running: {', '.join(stopped) or 'any container'}; starting them", file=sys.stderr)
        out = self.compose(folder, "up", "-d", "--no-recreate")  # a container that exists is only started if stopped
        if out.returncode != 0:
            raise RuntimeError(f"compose up failed: {out.stderr.strip()[-2000:]}")

    def check_gpu(self, folder):
        with open(os.path.join(folder, "compose.yml")) as fh:
            if GPU_REQUEST.search(fh.read()) and not has_nvidia_runtime():
                raise RuntimeError(NO_NVIDIA.format(role=self.role))

    def write_secrets(self, folder):
        """The role's SSM parameters, all of them (X.in files may name any); secrets.env, the
        containers' env_file, gets all but the registry credentials."""
        path = secrets_path(self.env, self.role)
        values = {}
        for page in self.ssm.get_paginator("get_parameters_by_path").paginate(Path=path, WithDecryption=True):
            for p in page["Parameters"]:
                values[p["Name"][len(path):]] = p["Value"]
        fd = os.open(os.path.join(folder, "secrets.env"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            for name, value in sorted(values.items()):
                if name not in REGISTRY_CREDENTIALS:
                    fh.write(f"{name}={value}\n")
        self.values = values
        return values

    def write_secret_files(self, folder, final):
        """The role's secret files from SSM (<secrets path>files/NAME) into folder/secret-files/NAME
        (0600, owned by its uid), and the compose override that mounts each read-only into its
        services, with the paths they have once folder is `final`. Returns the changed files (final paths)."""
        wanted = read_json(os.path.join(folder, SECRET_FILES), [])
        if not wanted:
            return []
        os.makedirs(os.path.join(folder, SECRET_FILES_DIR), mode=0o700, exist_ok=True)
        services, changed = {}, []
        for f in wanted:
            name = f"{secrets_path(self.env, self.role)}files/{f['name']}"
            try:
                value = self.ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            except self.ssm.exceptions.ParameterNotFound:
                raise RuntimeError(f"secret file {f['name']} is not in SSM ({name})") from None
            if write_private(os.path.join(folder, SECRET_FILES_DIR, f["name"]), value, int(f.get("uid") or 0)):
                changed.append(os.path.join(final, SECRET_FILES_DIR, f["name"]))
            for svc in f["services"]:
                services.setdefault(svc, {"volumes": []})["volumes"].append(
                    f"{os.path.join(final, SECRET_FILES_DIR, f['name'])}:{f['path']}:ro")
        with open(os.path.join(folder, OVERRIDE), "w") as fh:
            json.dump({"services": services}, fh, indent=2, sort_keys=True)
        return changed

    def run_tasks(self, folder, release):
        """The release's tasks, once: skipped when done (by any host), waited for when assigned to another."""
        tasks = read_json(os.path.join(folder, TASKS_FILE), [])
        if not tasks:
            return
        key = task_key(self.env, release, self.role)
        try:
            record = json.loads(self.get(key))
        except self.s3.exceptions.NoSuchKey:
            record = {}  # never assigned (a host moved by hand): this host runs them
        if record.get("state") == "done":
            return
        if record.get("state") == "failed":
            raise TaskFailed(record.get("error", "a release task failed"), record.get("failed") or {})
        if record.get("instance") not in (None, self.instance):
            raise TasksElsewhere(f"the release tasks run on {record['instance']} ({record.get('state')}); waiting for them")
        started, results = now(), []
        self.put_task_record(key, {"state": "running", "instance": self.instance, "started": started})
        for task in tasks:
            print(f"damso-reconcile: release task {task['name']}", file=sys.stderr)
            result = self.run_task(task, folder, release)
            results.append({k: result[k] for k in ("name", "exit_code", "seconds")})
            if result["exit_code"] != 0:
                error = (f"release task {task['name']} timed out after {task['timeout']} s" if result["timed_out"]
                         else f"release task {task['name']} exited with code {result['exit_code']}")
                failed = {"name": f"task {task['name']}", "image": task["image"], "image_id": "", "state": "exited",
                          "health": "none", "ok": False, "task": True, "logs": result["logs"],
                          "inspect_state": {"Status": "exited", "ExitCode": result["exit_code"]}}
                self.put_task_record(key, {"state": "failed", "instance": self.instance, "started": started,
                                           "finished": now(), "tasks": results, "error": error, "failed": failed})
                raise TaskFailed(error, failed)
        self.put_task_record(key, {"state": "done", "instance": self.instance, "started": started,
                                   "finished": now(), "tasks": results})

    def put_task_record(self, key, data):
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(data, indent=2, sort_keys=True).encode(),
                           ContentType="application/json")

    def run_task(self, task, folder, release):
        """One task in its own container with the role's env files; its output, secrets masked."""
        name = f"{self.project}-task-{task['name']}"
        sh(["docker", "rm", "-f", name])
        argv = ["docker", "run", "--name", name, "--label", f"{TASK_LABEL}={task['name']}",
                "--label", f"damso.release={release}", "--env-file", os.path.join(folder, "role.env"),
                "--env-file", os.path.join(folder, "secrets.env"), task["image"], *task["command"]]
        start, timed_out = time.monotonic(), False
        try:
            out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                 timeout=task["timeout"])
            code, output = out.returncode, out.stdout
        except subprocess.TimeoutExpired as exc:
            sh(["docker", "kill", name])
            code, timed_out = 124, True
            output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        finally:
            sh(["docker", "rm", "-f", name])
        secrets = self.mask_values()
        lines = output.splitlines()[-LOG_LINES:]
        logs = ["(logs withheld: the role's secrets could not be read to mask them)"] if secrets is None else \
            [masked(line, secrets)[:LOG_LINE_CHARS] for line in lines]
        return {"name": task["name"], "exit_code": code, "timed_out": timed_out, "logs": logs,
                "seconds": round(time.monotonic() - start, 1)}

    def login(self, registry):
        values = getattr(self, "values", {})
        if registry and values.get("REGISTRY_USERNAME") and values.get("REGISTRY_PASSWORD"):
            out = sh(["docker", "login", registry, "-u", values["REGISTRY_USERNAME"], "--password-stdin"],
                     input=values["REGISTRY_PASSWORD"])
            if out.returncode != 0:
                raise RuntimeError(f"docker login {registry} failed: {out.stderr.strip()}")

    def compose(self, folder, *args):
        files = ["-f", os.path.join(folder, "compose.yml")]
        if os.path.exists(os.path.join(folder, OVERRIDE)):  # the secret files' mounts
            files += ["-f", os.path.join(folder, OVERRIDE)]
        return sh([*compose_cmd(), "-p", self.project, *files, *args], cwd=folder)

    def containers(self):
        ids = sh(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"]).stdout.split()
        if not ids:
            return []
        return json.loads(sh(["docker", "inspect", *ids]).stdout or "[]")

    def health(self):
        result = []
        for c in self.containers():
            state = c["State"]
            health = (state.get("Health") or {}).get("Status", "none")
            ok = state["Status"] == "running" and health in ("healthy", "none")
            task = TASK_LABEL in (c["Config"].get("Labels") or {})
            if task:  # one-shot: done when it exited 0, still "starting" while it runs, failed on any other exit
                ok = state["Status"] == "exited" and state.get("ExitCode") == 0
                health = "starting" if state["Status"] in ("created", "running") else "none"
            result.append({
                "name": c["Config"]["Labels"].get("com.docker.compose.service", c["Name"].lstrip("/")),
                "image": c["Config"]["Image"],
                "image_id": c["Image"],
                "state": state["Status"],
                "health": health,
                "ok": ok,
                "task": task,
                "_raw": c,
            })
        return result

    def wait_healthy(self):
        deadline = time.monotonic() + self.health_timeout
        while True:
            containers = self.health()
            starting = any(c["health"] == "starting" for c in containers)
            if containers and all(c["ok"] for c in containers):
                return containers, True
            if time.monotonic() > deadline or (containers and not starting and any(
                    c["state"] in ("exited", "dead") or c["health"] == "unhealthy" for c in containers)):
                return containers, False
            time.sleep(2)

    def describe(self, containers):
        """Each container's state and last LOG_LINES log lines (stdout and stderr, in order).

        Logs are the app's output and may print anything: every value of the role's SSM
        parameters is masked; if they cannot be read, the lines are withheld."""
        secrets = self.mask_values()
        out = []
        for c in containers:
            raw = c.pop("_raw")
            if secrets is None:
                c["logs"] = ["(logs withheld: the role's secrets could not be read to mask them)"]
            else:
                logs = subprocess.run(["docker", "logs", "--tail", str(LOG_LINES), raw["Id"]],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
                c["logs"] = [masked(line, secrets)[:LOG_LINE_CHARS] for line in logs.stdout.splitlines()[-LOG_LINES:]]
            if not c["ok"]:
                state = json.dumps(raw["State"])  # its Health.Log holds health-check output
                c["inspect_state"] = json.loads(masked(state, secrets or [])) if secrets is not None else {"Status": raw["State"].get("Status")}
                # for `damso status`'s one-sentence diagnosis: restarts, memory limit (bytes, 0: none), compose depends_on
                c.update(restarts=raw.get("RestartCount"), memory=(raw.get("HostConfig") or {}).get("Memory"), created=raw.get("Created"),
                         depends_on=raw["Config"]["Labels"].get("com.docker.compose.depends_on"))
            out.append(c)
        return out

    def mask_values(self):
        """The role's secret values (and their lines), longest first; None if SSM cannot be read."""
        path = secrets_path(self.env, self.role)
        values = set()
        try:
            for page in self.ssm.get_paginator("get_parameters_by_path").paginate(Path=path, WithDecryption=True,
                                                                                  Recursive=True):  # secret files too
                for p in page["Parameters"]:
                    values.add(p["Value"])
                    values.update(line for line in p["Value"].splitlines() if len(line.strip()) >= 8)
        except Exception:  # noqa: BLE001 - no logs rather than unmasked logs
            return None
        return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)

    def prune(self, applied_file):
        """Keep the secrets of the applied release only, and KEEP_RELEASES release folders."""
        applied = open(applied_file).read().strip() if os.path.exists(applied_file) else None
        root = os.path.join(self.workdir, "releases")
        if not os.path.isdir(root):
            return
        others = [os.path.join(root, name) for name in os.listdir(root) if name != applied]
        for folder in [f for f in others if f.endswith(".partial")]:  # an interrupted download
            shred_folder(folder)
        kept = sorted((f for f in others if not f.endswith(".partial")), key=os.path.getmtime, reverse=True)
        for n, folder in enumerate(kept):
            if n >= KEEP_RELEASES - 1:
                shred_folder(folder)
            else:
                for name in secret_files(folder):
                    shred(os.path.join(folder, name))

    def desired(self):
        """The release of the most specific pointer that exists (None: nothing to run yet)."""
        for key in pointer_keys(self.env, self.role, self.instance):
            try:
                return json.loads(self.get(key)).get("release")
            except self.s3.exceptions.NoSuchKey:
                continue
        return None

    def run(self):
        release = self.desired()
        if not release:
            print("damso-reconcile: no release yet", file=sys.stderr)
            return 0
        applied_file = os.path.join(self.workdir, "applied")
        applied = open(applied_file).read().strip() if os.path.exists(applied_file) else None
        seconds = None  # a new release's compose pull, compose up and wait for health, in the report
        try:
            folder = os.path.join(self.workdir, "releases", release)
            if release == applied and os.path.isdir(folder):
                self.settings(json.loads(self.get(release_key(self.env, release, "manifest.json"))))
                self.refresh(folder)
            else:
                folder, manifest = self.fetch(release)
                self.check_gpu(folder)
                self.login(manifest.get("registry"))
                seconds = {}
                for name, step in (("pull", ("pull",)), ("start", ("up", "-d", "--remove-orphans"))):
                    if name == "start":
                        self.run_tasks(folder, release)  # before the services switch
                    began = time.monotonic()
                    out = self.compose(folder, *step)
                    seconds[name] = round(time.monotonic() - began, 1)
                    if 'could not select device driver "nvidia"' in out.stderr:
                        raise RuntimeError(NO_NVIDIA.format(role=self.role))
                    if out.returncode != 0:
                        raise RuntimeError(f"compose {' '.join(step)} failed: {out.stderr.strip()[-2000:]}")
                with open(applied_file, "w") as fh:
                    fh.write(release)
        except (Rejected, TaskFailed, TasksElsewhere) as exc:
            # Nothing of the release was started: the applied one keeps running (its stopped containers are started).
            error, running = str(exc), os.path.join(self.workdir, "releases", applied or "")
            if applied and os.path.isdir(running):
                try:
                    self.keep_running(running)
                except Exception as keep:  # noqa: BLE001 - the report says why
                    error += f" (and starting the stopped containers of {applied} failed: {keep})"
            status = {Rejected: "rejected", TaskFailed: "failed", TasksElsewhere: "waiting"}[type(exc)]
            report = {"release": release, "running": applied, "status": status, "error": error}
            if isinstance(exc, TaskFailed) and exc.record:
                report["containers"] = [exc.record]  # the task's exit code and last log lines
            self.report(report)
            return 0 if status == "waiting" else 1
        except Exception as exc:  # report, then let systemd retry at the next tick
            self.report({"release": release, "running": applied, "status": "failed", "error": str(exc)})
            return 1
        finally:
            try:
                self.prune(applied_file)
            except OSError as exc:  # what is left is removed at the next run
                print(f"damso-reconcile: could not prune old releases: {exc}", file=sys.stderr)
        began = time.monotonic()
        containers, ok = self.wait_healthy()
        report = {"release": release, "running": release, "status": "healthy" if ok else "unhealthy"}
        if seconds is not None:
            report["seconds"] = dict(seconds, health=round(time.monotonic() - began, 1))
        report["containers"] = self.describe(containers)
        self.report(report)
        return 0 if ok else 1


# --watch: the long-running unit (damso-reconcile.service). Every CHECK_EVERY seconds it reads the
# pointers with conditional GETs (If-None-Match on the ETag it last saw: an unchanged pointer answers
# 304 Not Modified, without a body), and runs the full reconcile when one changed, at start, on
# SIGHUP (systemctl reload damso-reconcile) and every PERIOD seconds (reports, a new node address,
# stopped containers). One process does every run, so two never overlap.
CHECK_EVERY = 4.0  # a wave starts at most this plus one GET after its pointer moved: within 5 s
PERIOD = 60.0


def http_status(exc):
    """The HTTP status of a botocore ClientError (None for anything else)."""
    return (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")


def pointer_state(s3, bucket, keys, seen=()):
    """((key, ETag or None: missing), ...) for the pointers, most specific first, down to the first
    that exists: those after it decide nothing while it is there. seen: the previous state, whose
    ETags make each GET conditional."""
    etags = dict(seen)
    state = []
    for key in keys:
        conditional = {"IfNoneMatch": etags[key]} if etags.get(key) else {}
        try:
            found = s3.get_object(Bucket=bucket, Key=key, **conditional)
            found["Body"].close()
            state.append((key, found["ETag"]))
        except Exception as exc:  # noqa: BLE001 - botocore's ClientError; anything else goes up
            status = http_status(exc)
            if status == 404:
                state.append((key, None))
                continue
            if status != 304:
                raise
            state.append((key, etags[key]))
        return tuple(state)
    return tuple(state)


def changed_key(before, after):
    """The first pointer whose ETag (or existence) differs between two states."""
    old, new = dict(before), dict(after)
    return next((key for key in list(new) + list(old) if old.get(key, "?") != new.get(key, "?")), None)


def watch(host, run=None, every=CHECK_EVERY, period=PERIOD, sleep=time.sleep, clock=time.monotonic, ticks=None):
    """Check the pointers every `every` s; reconcile (run, else host.run) when one moved, at start,
    on SIGHUP and every `period` s. ticks: stop after that many checks (tests); None: for ever."""
    run = run or host.run
    keys = pointer_keys(host.env, host.role, host.instance)
    asked = ["at start"]
    if ticks is None:
        import signal

        signal.signal(signal.SIGHUP, lambda *_: asked.append("reload asked"))
    seen, due, n = (), clock() + period, 0
    while ticks is None or n < ticks:
        n += 1
        began = clock()
        reason = None
        try:
            state = pointer_state(host.s3, host.bucket, keys, seen)
            moved = changed_key(seen, state) if seen else None
            seen = state
            reason = f"{moved} changed" if moved else None
        except Exception as exc:  # noqa: BLE001 - S3 unreachable for a moment: the next check tries again
            print(f"damso-reconcile: cannot read the pointers: {exc}", file=sys.stderr)
        if asked:
            reason = asked.pop(0) if reason is None else reason
            asked.clear()
        if reason is None and began >= due:
            reason = f"every {period:g} s"
        if reason:
            print(f"damso-reconcile: reconciling ({reason})", file=sys.stderr)
            try:
                print(f"damso-reconcile: run ended (exit {run()})", file=sys.stderr)
            except Exception as exc:  # noqa: BLE001 - a run that raises is tried again at the next period
                print(f"damso-reconcile: run ended (it raised: {exc})", file=sys.stderr)
            due = clock() + period
        if ticks is None or n < ticks:
            sleep(max(0.0, every - (clock() - began)))


def main(argv):
    if not argv:
        return Host().run()
    import argparse

    parser = argparse.ArgumentParser(description="damso reconcile unit")
    parser.add_argument("--watch", action="store_true", help="run for ever: check the pointers, reconcile on a change")
    parser.add_argument("--every", type=float, default=CHECK_EVERY, help="seconds between pointer checks")
    parser.add_argument("--period", type=float, default=PERIOD, help="seconds between full runs without a change")
    args = parser.parse_args(argv)
    if not args.watch:
        return Host().run()
    watch(Host(), every=args.every, period=args.period)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
