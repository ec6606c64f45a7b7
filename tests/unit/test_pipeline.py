"""The deploy and plan pipeline against in-process moto, with Terraform replaced by a recording
fake runner (tests/support/fake_terraform.py): the exact Terraform sequence, layer order,
what is uploaded and pointed (and what is not), confirmation, --only, early failures."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from damso_ops import secrets
from damso_ops.images.manifest import BuildManifest, ImageRecord, save
from damso_ops.deploy import destroy, lock, pipeline, planning, request, rollout, stackops
from damso_ops.deploy.store import ReleaseStore
from damso_ops.deploy.target import Target
from damso_ops.errors import ConfigError, DamsoError, UsageError
from tests.support.fake_terraform import FakeTerraform
from tests.support.moto_env import ARTIFACTS, STATE, project_templates, put_report, put_state

ROLES = """
[environments.prod.roles.api]
services = ["api"]
secrets = ["API_TOKEN"]
health_timeout = 30
env = { GREETING = "hello", VPC_CIDR = "${shared.vpc_cidr}" }
[environments.prod.roles.web]
services = ["web"]
health_timeout = 20
"""
TEMPLATES = {
    "compose/api.yml.j2": "services:\n  api:\n    image: {{ images['api'] }}\n    env_file: [{{ env_file }}, {{ secrets_file }}]\n",
    "compose/web.yml.j2": "services:\n  web:\n    image: {{ images['web'] }}\n",
    "user-data/bootstrap.sh.j2": "#!/bin/sh\n# {{ role }} of {{ env }} reads s3://{{ bucket }}\n",
}
WANTED = {
    "shared": ["aws_vpc.main", "module.artifacts.aws_s3_bucket.this"],
    "api": ["module.host.aws_instance.this"],
    "web": ["module.host.aws_instance.this"],
}
OUTPUTS = {
    "shared": {"vpc_id": "vpc-0unit", "vpc_cidr": "10.9.0.0/16", "artifact_bucket": ARTIFACTS,
               "public_subnet_ids": ["subnet-pub"], "private_subnet_ids": ["subnet-priv"], "data_subnet_ids": []},
    "api": {"instance_id": "i-0api", "private_ip": "10.9.1.10"},
    "web": {"instance_id": "i-0web", "private_ip": "10.9.1.11"},
}  # fmt: skip
DIGEST = {"api": "sha256:" + "a" * 64, "web": "sha256:" + "b" * 64}
SECRET = "unit-api-token-0b6d"
FIRST_APPLY = [
    "init shared", "plan shared", "confirm shared", "apply shared",
    "init api", "init web", "plan api", "plan web", "confirm api web", "apply api", "apply web",
]  # fmt: skip
REFRESHED = ["plan shared", "plan api", "plan web"]  # at once: every stack's inputs from the state


def image(service: str) -> ImageRecord:
    return ImageRecord(service, "app", "file:///nonexistent.git", "v1", "c" * 40, f"registry.test/team/{service}",
                       ["sha-cccccccccccc"], DIGEST[service], {}, "built", "2026-01-01T00:00:00+00:00")  # fmt: skip


@dataclass
class Project:
    """One environment (prod: roles api and web) deployed through the library, not the CLI."""

    target: Target
    fake: FakeTerraform
    answer: bool = True  # what confirm() says
    fleet: str | None = "healthy"  # what the hosts report once the pointer moves (None: nothing)
    events: list[tuple[str, str]] = field(default_factory=list)
    puts: list[str] = field(default_factory=list)  # artifact bucket keys written, in order

    @property
    def s3(self):
        return self.target.aws.client("s3")

    def request(self, only=None) -> request.DeployRequest:
        return request.resolve(self.target.cfg, "prod", only, None)

    def confirm(self, plans) -> bool:
        self.fake.note("confirm " + " ".join(p.stack for p in plans))
        return self.answer

    def on_event(self, phase: str, message: str) -> None:
        self.events.append((phase, message))

    def host_moved(self, store: ReleaseStore, role: str, release: str | None) -> None:
        """The hosts: a role's instance reports a release once its role's pointer names it."""
        if self.fleet and release:
            put_report(store, OUTPUTS[role]["instance_id"], role=role, release=release, running=release, status=self.fleet,
                       containers=[], time=datetime.now(timezone.utc).isoformat())  # fmt: skip

    def deploy(self, only=None, **options) -> pipeline.DeployResult:
        """pipeline.deploy under the environment's lock, without the look-ahead locked_deploy makes first."""
        with planning.locked(self.target, "deploy", on_event=self.on_event) as held:
            return pipeline.deploy(self.target, self.request(only), held=held, confirm=self.confirm, on_event=self.on_event,
                                   jobs=1, **options)  # fmt: skip

    def locked_deploy(self, **options) -> pipeline.DeployResult:
        return pipeline.locked_deploy(self.target, self.request(), confirm=self.confirm, on_event=self.on_event, jobs=1,
                                      **options)  # fmt: skip

    def plan(self) -> pipeline.DeployResult:
        return pipeline.plan(self.target, self.request(), on_event=self.on_event, jobs=1)

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def release_puts(self) -> list[str]:
        return [k for k in self.puts if not k.startswith("prod/reports/")]

    def templates(self, **changed: str) -> None:
        """Change the project's compose templates: compose/<role>.yml.j2 = text."""
        project_templates(self.target.cfg.root, {f"compose/{role}.yml.j2": text for role, text in changed.items()})

    def stack_file(self, stack: str, name: str) -> str:
        return (self.target.state_dir / "terraform" / "prod" / "stacks" / stack / name).read_text()


@pytest.fixture
def project(aws, make_config, monkeypatch, tmp_path) -> Project:
    monkeypatch.setenv("DAMSO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TF_PLUGIN_CACHE_DIR", str(tmp_path / "plugins"))
    monkeypatch.setenv("API_TOKEN", SECRET)
    cfg = make_config(ROLES)
    project_templates(cfg.root, TEMPLATES)
    save(cfg.state_dir, BuildManifest("b1", "2026-01-01T00:00:00+00:00", None, {s: image(s) for s in DIGEST}))
    fake = FakeTerraform(WANTED, OUTPUTS, on_state=lambda stack, outputs: put_state(aws.client("s3"), stack, outputs))
    monkeypatch.setattr(stackops, "run", fake)
    aws.client("s3").create_bucket(Bucket=ARTIFACTS)  # the shared stack's bucket (the fake creates nothing)
    p = Project(Target(cfg, "prod", aws), fake)
    set_role_release = ReleaseStore.set_role_release

    def moved(store, role, release):
        set_role_release(store, role, release)
        p.host_moved(store, role, release)

    monkeypatch.setattr(ReleaseStore, "set_role_release", moved)
    p.s3.meta.events.register("before-parameter-build.s3.PutObject",
                              lambda params, **_: p.puts.append(params["Key"]) if params["Bucket"] == ARTIFACTS else None)  # fmt: skip
    return p


def ssm_names(project: Project) -> list[str]:
    found = project.target.aws.client("ssm").get_parameters_by_path(Path="/damso/prod/", Recursive=True)
    return [p["Name"] for p in found["Parameters"]]


# ---- the request --------------------------------------------------------------------


def test_request_is_resolved_once_with_shared_first_and_pinned_images(project):
    req = project.request()
    assert (req.roles, req.stacks, req.only) == (("api", "web"), ("shared", "api", "web"), False)
    assert req.images == {"api": f"registry.test/team/api@{DIGEST['api']}", "web": f"registry.test/team/web@{DIGEST['web']}"}
    assert req.image_info()["web"] == {"image": req.images["web"], "commit": "c" * 40, "ref": "v1",
                                       "repository": "app"}  # fmt: skip
    only = project.request(["web"])
    assert (only.roles, only.stacks, only.only, list(only.images)) == (("web",), ("shared", "web"), True, ["web"])


def test_request_refuses_an_unknown_role_and_a_missing_image(project, make_config):
    with pytest.raises(UsageError) as exc:
        project.request(["db"])
    assert exc.value.message == "Unknown role 'db' in prod (roles: api, web)."
    cfg = make_config(ROLES + '[environments.prod.roles.agent]\nservices = ["agent"]\n'
                      '[services.agent]\nrepo = "app"\nimage = "agent"\n')  # fmt: skip
    with pytest.raises(DamsoError, match=r"The build manifest .*latest.json has no image for agent\."):
        request.resolve(cfg, "prod", None, None)
    with pytest.raises(ConfigError, match="refers to output 'nope' of stack 'shared'"):
        request.resolve(make_config(ROLES.replace("shared.vpc_cidr", "shared.nope")), "prod", None, None)
    assert project.fake.commands == []


# ---- deploy -------------------------------------------------------------------------


def test_first_deploy_runs_terraform_layer_by_layer_applying_after_confirm(project):
    result = project.deploy()
    assert project.fake.log == FIRST_APPLY
    project.fake.check_argv()
    assert result.applied == ["shared", "api", "web"]
    assert [(p.stack, p.text()) for p in result.plans] == [("shared", "2 to create"), ("api", "1 to create"),
                                                           ("web", "1 to create")]  # fmt: skip
    assert project.target.bucket_exists(STATE)
    assert ("state", f"created state bucket {STATE}") in project.events
    assert ssm_names(project) == ["/damso/prod/api/API_TOKEN"]


def test_with_every_change_approved_ahead_a_new_stack_is_planned_and_applied_in_one_run(project):
    """--yes (planning.approves_all): each stack without state is applied by one `terraform apply
    -auto-approve`, layer by layer; confirm asks nothing and is shown what each made. Once the
    stacks have state, a change is planned first, as without --yes."""
    confirm = project.confirm
    project.confirm = lambda plans: confirm(plans)
    project.confirm.approves_all = True
    result = project.deploy()
    assert project.fake.log == ["init shared", "apply shared", "confirm shared",
                                "init api", "init web", "apply api", "apply web", "confirm api web"]  # fmt: skip
    project.fake.check_argv()
    assert result.applied == ["shared", "api", "web"]
    assert [(p.stack, p.text()) for p in result.plans] == [("shared", "2 to create"), ("api", "1 to create"),
                                                           ("web", "1 to create")]  # fmt: skip
    assert ("planned", "api: 1 to create") in project.events

    project.fake.log.clear()
    project.fake.touch("web", "module.host.aws_instance.this")
    again = project.deploy(refresh=True)
    assert project.fake.log == ["plan shared", "plan api", "plan web", "confirm web", "apply web"]
    assert again.applied == ["web"]


def test_role_stacks_get_shared_outputs_and_rendered_user_data(project):
    project.deploy()
    inputs = project.stack_file("api", "damso.auto.tfvars.json")
    assert '"subnet_id": "subnet-priv"' in inputs and f'"artifact_bucket": "{ARTIFACTS}"' in inputs
    assert f'"user_data": "#!/bin/sh\\n# api of prod reads s3://{ARTIFACTS}\\n"' in inputs
    assert project.stack_file("shared", "damso.auto.tfvars.json") == (
        '{\n  "availability_zones": [],\n  "deny_insecure_transport": true,\n  "env": "prod",\n  "flow_logs": true,\n'
        '  "force_destroy_artifacts": false,\n  "lifecycle_rules": true,\n  "project": "unit",\n  "region": "us-east-1"\n}\n'
    )  # us-east-1 has no default zones: the shared stack takes the region's first two
    assert project.stack_file("web", "backend.hcl").startswith(f'bucket = "{STATE}"\nkey = "prod/web.tfstate"\n')


def test_deploy_uploads_the_release_and_writes_the_pointer_last(project):
    result = project.deploy()
    store = project.target.store(ARTIFACTS)
    release = result.release
    files = [f"prod/releases/{release}/{role}/{name}" for role in ("api", "web") for name in ("compose.yml", "role.env")]
    pointers = ["prod/roles/api/current", "prod/roles/web/current"]  # both roles held where they are (nowhere yet)
    assert project.release_puts()[:8] == [*files, f"prod/releases/{release}/manifest.json", *pointers, "prod/current"]
    # then the rollout (one wave: api and web together) moves each role's pointer, recorded in rollout.json
    assert set(project.release_puts()[8:]) == {"prod/rollout.json", *pointers, f"prod/rollouts/{release}.json"}
    assert result.changed and result.uploaded == 5
    manifest = store.manifest(release)
    assert store.current() == {"release": release, "content": manifest["content"]}
    ssm = project.target.aws.client("ssm")
    assert manifest["settings"] == {"api": {"health_timeout": 30, "secrets": secrets.fingerprint(ssm, "prod", "api")},
                                    "web": {"health_timeout": 20, "secrets": secrets.fingerprint(ssm, "prod", "web")}}  # fmt: skip
    assert store.file(release, "api", "role.env") == "GREETING=hello\nVPC_CIDR=10.9.0.0/16\n"
    assert store.file(release, "web", "compose.yml") == f"services:\n  web:\n    image: registry.test/team/web@{DIGEST['web']}\n"
    assert result.healthy and sorted(result.instances) == ["i-0api", "i-0web"]
    assert result.to_dict()["stacks"]["api"] == {"changes": {"create": 1, "update": 0, "replace": 0, "delete": 0},
                                                 "applied": True, "planned": True}  # fmt: skip


def test_a_rotated_secret_makes_the_next_deploy_a_new_release(project):
    """The release holds each role's secrets fingerprint (names and SSM versions, no value), so the
    hosts apply a rotated value: new env files, recreated containers, the old files removed."""
    first = project.deploy()
    ssm = project.target.aws.client("ssm")
    before = secrets.fingerprint(ssm, "prod", "api")
    secrets.put(ssm, "prod", "api", "API_TOKEN", "rotated-value-1")
    assert secrets.fingerprint(ssm, "prod", "api") != before
    second = project.deploy()
    assert second.changed and second.release != first.release
    manifest = project.target.store(ARTIFACTS).manifest(second.release)
    assert "rotated-value-1" not in json.dumps(manifest)
    assert not project.deploy().changed


def test_a_second_deploy_of_the_same_content_inits_applies_and_uploads_nothing(project):
    first = project.deploy()
    project.fake.log.clear()
    project.puts.clear()
    second = project.deploy()
    assert project.fake.log == []  # code, inputs and state as the first deploy left them: nothing planned
    assert [p.text() for p in second.plans] == ["no changes (not planned: code, inputs and state as at its last clean plan)"] * 3
    assert not any(s["planned"] for s in second.to_dict()["stacks"].values())
    assert project.release_puts() == []
    assert (second.release, second.changed, second.uploaded, second.applied) == (first.release, False, 0, [])
    assert ("release", f"{first.release} is current and unchanged; nothing uploaded") in project.events
    assert second.healthy
    project.fake.log.clear()
    refreshed = project.deploy(refresh=True)
    assert project.fake.log == REFRESHED  # init stamps match, no plan has changes: no show, no confirm, no apply
    assert [p.text() for p in refreshed.plans] == ["no changes"] * 3 and refreshed.applied == []


def test_a_stack_is_planned_again_when_its_state_or_its_inputs_change(project, make_config):
    project.deploy()
    project.fake.log.clear()
    put_state(project.s3, "web", {**OUTPUTS["web"], "private_ip": "10.9.1.99"})  # someone else wrote web's state
    project.deploy()
    assert project.fake.log == ["plan web"]
    project.fake.log.clear()
    project.deploy()
    assert project.fake.log == []  # web's clean plan was remembered against that state
    bigger = ROLES.replace("health_timeout = 30", 'health_timeout = 30\ninstance_type = "t3.large"')
    project.target = Target(make_config(bigger), "prod", project.target.aws)
    project.fake.touch("api", "module.host.aws_instance.this")  # what the new input changes
    project.deploy()
    assert project.fake.log == ["plan api", "confirm api", "apply api"]
    assert "t3.large" in project.stack_file("api", "damso.auto.tfvars.json")
    project.fake.log.clear()
    project.deploy()
    assert project.fake.log == []  # remembered after the apply, against the state it left


def test_only_the_changed_stack_is_shown_confirmed_and_applied(project):
    project.deploy()
    project.fake.log.clear()
    project.fake.touch("web", "module.host.aws_instance.this")  # changed outside Terraform: only a refresh sees it
    assert project.deploy().applied == [] and project.fake.log == []
    result = project.deploy(refresh=True)
    assert project.fake.log == ["plan shared", "plan api", "plan web", "confirm web", "apply web"]  # at once
    assert result.applied == ["web"] and [p.text() for p in result.plans] == ["no changes", "no changes", "1 to update"]
    assert not result.changed  # the same files: the release stays
    assert all("-lock=false" in c.argv for c in project.fake.commands if c.argv[1] == "plan")  # inside damso's lock


def test_a_change_to_a_stack_others_depend_on_is_planned_again_layer_by_layer(project):
    project.deploy()
    project.fake.log.clear()
    project.fake.touch("shared", "aws_vpc.main")
    result = project.deploy(refresh=True)
    assert project.fake.log == ["plan shared", "plan api", "plan web",  # at once, then thrown away
                                "plan shared", "confirm shared", "apply shared", "plan api", "plan web"]  # fmt: skip
    assert result.applied == ["shared"]
    assert ("plan", "shared would change, and other stacks depend on it: planning layer by layer") in project.events


def test_a_refused_confirm_names_the_stacks_applies_nothing_and_unlocks(project):
    project.answer = False
    with pytest.raises(DamsoError) as exc:
        project.locked_deploy()
    assert exc.value.message == "Nothing applied: shared would change and the change was not confirmed."
    assert exc.value.hint == "Pass --yes to apply without asking."
    assert project.fake.log == ["init shared", "plan shared", "confirm shared"]
    assert project.fake.verbs("apply") == [] and project.keys() == []
    assert lock.read(project.s3, STATE, "prod") is None


def test_locked_deploy_holds_the_environments_lock_while_it_runs(project):
    held = []
    project.confirm = lambda plans: held.append(lock.read(project.s3, STATE, "prod")["command"]) or True
    result = project.locked_deploy(command="livekit up")
    assert held == ["livekit up", "livekit up"] and result.changed
    assert lock.read(project.s3, STATE, "prod") is None


def test_a_missing_secret_fails_before_anything_is_created(project, monkeypatch):
    monkeypatch.delenv("API_TOKEN")
    with pytest.raises(DamsoError) as exc:
        project.locked_deploy()
    assert exc.value.message == "Secret not set for prod: api/API_TOKEN."
    assert "damso secrets set prod api API_TOKEN" in exc.value.hint
    assert not project.target.bucket_exists(STATE)
    assert project.fake.commands == [] and ssm_names(project) == []
    assert not (project.target.state_dir / "terraform").exists()


def test_only_keeps_the_other_roles_files_from_the_current_release(project):
    first = project.deploy()
    project.templates(api="services:\n  api:\n    image: {{ images['api'] }}\n    restart: always\n",
                      web="services:\n  web:\n    image: changed\n")  # fmt: skip
    project.fake.log.clear()
    result = project.deploy(only=["api"])
    assert "web" not in " ".join(project.fake.log)
    assert result.changed and result.release != first.release and sorted(result.instances) == ["i-0api"]
    store = project.target.store(ARTIFACTS)
    old, new = store.manifest(first.release), store.manifest(result.release)
    assert new["roles"]["web"] == old["roles"]["web"] and new["roles"]["api"]["compose.yml"] != old["roles"]["api"]["compose.yml"]
    assert store.file(result.release, "web", "compose.yml") == store.file(first.release, "web", "compose.yml")
    assert "restart: always" in store.file(result.release, "api", "compose.yml")
    assert sorted(new["images"]) == ["api", "web"]


def test_only_without_a_current_release_is_refused(project):
    project.fake.apply_all()
    with pytest.raises(UsageError) as exc:
        project.deploy(only=["api"])
    assert exc.value.message == "--only needs an earlier release of prod to take web from; deploy everything first."
    assert project.keys() == []


def test_without_wait_the_deploy_returns_without_reports(project):
    project.fleet = None
    result = project.deploy(wait=False, timeout=0.1)  # were it to wait, it would fail within 0.1 s
    assert result.instances == {} and result.changed
    assert project.target.store(ARTIFACTS).reports() == {}
    assert project.keys("prod/current") == ["prod/current"]
    store = project.target.store(ARTIFACTS)
    assert store.role_release("api") == store.role_release("web") == (True, result.release)  # all at once
    assert store.rollout()["state"] == "done" and store.rollout()["waited"] is False


def test_an_unhealthy_report_fails_the_deploy_without_waiting_out_the_timeout(project):
    project.fleet = "unhealthy"
    with pytest.raises(rollout.RolloutHalted) as exc:
        project.deploy(timeout=600)
    state = project.target.store(ARTIFACTS).rollout()
    release = state["release"]
    assert exc.value.message.startswith(f"Rollout of {release} halted at wave 1 (api, web): Release {release} is not healthy.")
    assert "unhealthy" in exc.value.details and exc.value.exit_code == 4
    assert state["state"] == "rolled_back" and state["failed"]["wave"] == 1


# ---- plan ---------------------------------------------------------------------------


def test_plan_of_a_never_deployed_environment_is_refused(project):
    with pytest.raises(DamsoError) as exc:
        project.plan()
    assert exc.value.message == f"prod was never deployed (no state bucket {STATE}); nothing to compare with."
    assert project.fake.commands == []


def test_plan_stops_at_the_stacks_that_wait_for_a_changing_one(project):
    project.target.ensure_state_bucket()
    result = project.plan()
    assert project.fake.log == ["init shared", "plan shared"]
    project.fake.check_argv()
    assert result.pending == ["api", "web"] and [p.text() for p in result.plans] == ["2 to create"]
    assert ("plan", "api, web can be planned once shared is applied") in project.events
    assert ("secrets", "would store in SSM: api/API_TOKEN") in project.events
    assert ssm_names(project) == [] and project.keys() == []


def test_plan_applies_uploads_and_points_nothing(project):
    project.target.ensure_state_bucket()
    project.fake.apply_all()  # the stacks exist, no release was ever made
    project.fake.touch("api", "module.host.aws_instance.this")
    result = project.plan()
    assert project.fake.log == ["init shared", "init api", "init web",
                                "plan shared", "plan api", "plan web"]  # at once: every stack has state  # fmt: skip
    assert all("-lock-timeout=120s" in c.argv for c in project.fake.commands if c.argv[1] == "plan")  # no damso lock
    assert [p.text() for p in result.plans] == ["no changes", "1 to update", "no changes"]
    assert result.release and not result.changed and result.pending == []
    assert sorted(result.diffs) == ["api/compose.yml", "api/role.env", "web/compose.yml", "web/role.env"]
    assert result.diffs["api/role.env"] == ("--- current/api/role.env\n+++ new/api/role.env\n@@ -0,0 +1,2 @@\n"
                                            "+GREETING=hello\n+VPC_CIDR=10.9.0.0/16\n")  # fmt: skip
    assert project.keys() == [] and project.puts == [] and ssm_names(project) == []


def test_plan_after_a_deploy_diffs_only_what_changed(project):
    first = project.deploy()
    project.templates(web="services:\n  web:\n    image: {{ images['web'] }}\n    restart: always\n")
    project.fake.log.clear()
    project.puts.clear()
    result = project.plan()
    assert project.fake.verbs("apply") == [] and project.puts == []
    assert list(result.diffs) == ["web/compose.yml"]
    assert result.diffs["web/compose.yml"].endswith(" image: registry.test/team/web@" + DIGEST["web"] + "\n+    restart: always\n")
    assert result.release != first.release
    assert project.target.store(ARTIFACTS).current()["release"] == first.release
    assert project.target.store(ARTIFACTS).release_ids() == [first.release]


# ---- destroy ------------------------------------------------------------------------


def test_destroy_goes_dependents_first(project):
    project.deploy()
    order = destroy.order(project.target, None)
    assert order == ["api", "web", "shared"] and destroy.order(project.target, ["web"]) == ["web"]
    project.fake.log.clear()
    project.events.clear()
    assert destroy.destroy(project.target, order, project.on_event) == order
    # every stack's inputs from the state objects of those still standing: no `terraform output`
    log = project.fake.log  # api and web (one layer) at once, each planned and destroyed in one run; then shared
    assert sorted(log[:2]) == ["apply api", "apply web"] and log[2:] == ["apply shared"]
    project.fake.check_argv()
    assert [c.argv[-1] for c in project.fake.commands][-3:] == ["-destroy"] * 3
    assert [e for e in project.events if e[0] == "destroy"] == [
        ("destroy", "api: 1 to delete"), ("destroy", "web: 1 to delete"), ("destroy", "shared: 2 to delete")]
    assert ("lock", f"prod locked for destroy by {lock.holder_name()} (pid {os.getpid()})") in project.events
    assert lock.read(project.s3, STATE, "prod") is None  # released
    assert project.fake.resources == {"shared": set(), "api": set(), "web": set()}


def test_destroy_once_the_shared_stack_is_gone_finds_nothing(project):
    project.deploy()
    destroy.destroy(project.target, ["api", "web", "shared"], project.on_event)
    project.fake.log.clear()
    project.events.clear()
    assert destroy.destroy(project.target, ["api", "web", "shared"], project.on_event) == []
    assert project.fake.log == []  # every state object says destroyed: nothing to plan
    assert [e for e in project.events if e[0] == "destroy"] == [("destroy", f"{s}: nothing to destroy") for s in ("api", "web", "shared")]


def test_destroy_of_a_stack_another_standing_stack_depends_on_is_refused(project):
    project.deploy()
    project.fake.log.clear()
    with pytest.raises(DamsoError) as exc:
        destroy.destroy(project.target, ["shared"], project.on_event)
    assert exc.value.message == "shared cannot be destroyed while api, web still depends on it."
    assert project.fake.log == [] and lock.read(project.s3, STATE, "prod") is None


def test_destroy_without_a_state_bucket_is_refused(project):
    with pytest.raises(DamsoError) as exc:
        destroy.destroy(project.target, ["api", "shared"], project.on_event)
    assert exc.value.message == f"prod has no state bucket {STATE}: nothing to destroy."
    assert project.fake.commands == []


def test_a_settled_deploy_writes_nothing_not_even_the_lock(project):
    project.locked_deploy()
    project.fake.log.clear()
    writes = []
    for op in ("PutObject", "DeleteObject"):
        project.s3.meta.events.register(f"before-parameter-build.s3.{op}",
                                         lambda params, op=op, **_: writes.append((op, params["Key"])))  # fmt: skip
    result = project.locked_deploy()
    assert writes == [] and project.fake.log == []  # no plan, no apply, no lock, no pointer, no report
    assert not result.changed and result.healthy and result.release == project.target.store(ARTIFACTS).current()["release"]
    assert ("health", f"every instance already reports {result.release} healthy; not waiting (nothing was written, "
            "not even the lock)") in project.events  # fmt: skip


def test_an_app_change_uses_the_plans_made_before_the_lock(project):
    project.locked_deploy()
    project.fake.log.clear()
    project.templates(web="services:\n  web:\n    image: {{ images['web'] }}\n    restart: always\n")
    result = project.locked_deploy(refresh=True)
    assert project.fake.log == REFRESHED  # planned once, before the lock; the state did not change since
    assert result.changed and result.applied == [] and result.healthy


def test_plan_shows_the_aws_permissions_each_role_gets(project, make_config):
    cfg = make_config(ROLES + '[environments.prod.roles.api.aws]\ncontainers = true\n[[environments.prod.roles.api.aws.statements]]\n'
                              'actions = ["bedrock:InvokeModel"]\nresources = ["arn:aws:bedrock:us-east-1::foundation-model/*"]\n')
    project.target = Target(cfg, "prod", project.target.aws)
    project.target.ensure_state_bucket()
    project.fake.apply_all()
    result = project.plan()
    assert result.permissions == {"api": ["allow bedrock:InvokeModel on arn:aws:bedrock:us-east-1::foundation-model/*",
                                          "containers may use the instance role (IMDS hop limit 2)"]}  # fmt: skip
    assert '"metadata_hop_limit": 2' in project.stack_file("api", "damso.auto.tfvars.json")
    assert "bedrock:InvokeModel" in project.stack_file("api", "damso.auto.tfvars.json")
