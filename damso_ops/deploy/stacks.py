"""The stack graph of an environment: which stacks, in what order, with what inputs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from damso_ops import paths
from damso_ops.config import Config, Environment, Role
from damso_ops.deploy.render import REF
from damso_ops.errors import ConfigError

KNOWN = ("shared", "livekit", "api", "web", "agent", "edge", "data", "gpu-dev")
DEPENDS: Mapping[str, tuple[str, ...]] = {
    "shared": (),
    "edge": ("shared", "api", "web", "livekit"),
    "data": ("shared", "api", "web", "agent"),  # admits only the security groups of the roles that use it
}
DATA_CLIENT = re.compile(r"\$\{data\.|^(DATABASE_URL|REDIS_URL|REDIS_AUTH_TOKEN)$")
PUBLIC_ROLES = ("livekit",)


def depends(stack: str) -> tuple[str, ...]:
    return DEPENDS.get(stack, ("shared",))


def roles_by_stack(env: Environment) -> dict[str, tuple[str, Role]]:
    return {role.stack_name(name): (name, role) for name, role in env.roles.items()}


def stack_names(env_name: str, env: Environment) -> list[str]:
    names = ["shared", *roles_by_stack(env), *env.stacks]
    seen: list[str] = []
    for n in names:
        if n not in KNOWN:
            raise ConfigError(f"environments.{env_name}: unknown stack '{n}' (known: {', '.join(KNOWN)}).")
        if n not in seen:
            seen.append(n)
    return seen


def layers(names: list[str]) -> list[list[str]]:
    """Stacks grouped so that each group depends only on earlier groups (run a group in parallel)."""
    remaining, done, result = list(names), set(), []
    while remaining:
        ready = [n for n in remaining if all(d in done or d not in names for d in depends(n))]
        if not ready:
            raise ConfigError(f"Stacks {', '.join(remaining)} depend on each other in a cycle.")
        result.append(ready)
        done.update(ready)
        remaining = [n for n in remaining if n not in ready]
    return result


def inputs(
    cfg: Config,
    env_name: str,
    stack: str,
    outputs: Mapping[str, Mapping[str, object]],
    user_data: Mapping[str, str],
) -> dict[str, object]:
    """The variables of one stack: config values plus the outputs of the stacks it depends on."""
    env = cfg.environments[env_name]
    values: dict[str, object] = {"project": cfg.project.name, "env": env_name, "region": env.region}
    if stack == "shared":
        return {**values, "availability_zones": env.zones(), "deny_insecure_transport": not env.sandbox,
                "flow_logs": env.flow_logs,
                "force_destroy_artifacts": env.sandbox,  # a sandbox's destroy takes its releases along; AWS's keeps them
                "lifecycle_rules": not env.sandbox}  # the emulator runs none, and the provider waits 55 s for them  # fmt: skip
    shared = outputs["shared"]
    if stack == "gpu-dev":
        return {**values, **gpu_dev_inputs(env, shared)}
    values.update(vpc_id=shared["vpc_id"], vpc_cidr=shared["vpc_cidr"])
    if stack not in ("edge", "data"):
        values.update(artifact_bucket=shared["artifact_bucket"])
    owner = roles_by_stack(env).get(stack)
    if owner:
        role_name, role = owner
        subnets = shared["public_subnet_ids"] if role_name in PUBLIC_ROLES else shared["private_subnet_ids"]
        values.update(
            role=role_name,
            subnet_id=subnets[0],
            subnet_ids=list(subnets),
            instance_count=role.count,
            ami_id=role.ami,
            instance_type=role.instance_type_for(role_name),
            volume_size=role.volume_size,
            user_data=user_data[role_name],
            ssh_cidrs=list(env.ssh_cidrs),
            metadata_hop_limit=2 if role.aws.containers else 1,
            managed_policy_arns=list(role.aws.managed_policies),
            extra_policy_statements=[{"actions": list(s.actions), "resources": list(s.resources)} for s in role.aws.statements],
            cloudwatch_logs=env.logs.cloudwatch,
            log_retention_days=env.logs.retention_days,
        )
    if stack == "livekit":
        lk = env.livekit
        values.update(
            tls=lk.tls,
            zone_id=env.zone_id,
            domain=env.domain,
            livekit_subdomain=lk.subdomain,
            signal_port=lk.port,
            tcp_fallback_port=lk.tcp_port,
            udp_port_start=lk.udp_port_start,
            udp_port_end=lk.udp_port_end,
        )
        if not lk.tls and "edge" in env.stacks:  # clients come through the NLB, from inside the VPC
            values.update(signal_cidrs=[shared["vpc_cidr"]])
    if stack == "data":
        clients = [role.stack_name(name) for name, role in env.roles.items() if _uses_data(role)]
        values.update(data_subnet_ids=shared["data_subnet_ids"], create_redis_parameter_group=not env.sandbox,
                      db_deletion_protection=not env.sandbox,  # the emulated database holds nothing to protect
                      redis_tls=env.data.redis_tls,  # the stack's redis_url output is rediss:// or redis:// to match
                      client_security_group_ids=[outputs[s]["security_group_id"] for s in clients if s in outputs])  # fmt: skip
    if stack == "edge":
        values.update(
            public_subnet_ids=shared["public_subnet_ids"],
            domain=env.domain,
            zone_id=env.zone_id,
            certificate_arn=env.certificate_arn,
            livekit_signal_port=env.livekit.port,
        )
        for dep in ("api", "web"):
            values[f"{dep}_instance_ids"] = list(outputs[dep].get("instance_ids") or [outputs[dep]["instance_id"]])
        if "livekit" in outputs:
            values["livekit_instance_id"] = outputs["livekit"]["instance_id"]
    return values


def _uses_data(role: Role) -> bool:
    """A role that talks to the databases: it names DATABASE_URL/REDIS_URL or refers to the data stack."""
    return any(DATA_CLIENT.search(k) or DATA_CLIENT.search(v) for k, v in role.env.items()) or any(
        DATA_CLIENT.search(s) for s in role.secrets)


def gpu_dev_inputs(env: Environment, shared: Mapping[str, object]) -> dict[str, object]:
    """The gpu-dev stack's variables besides project/env/region (see terraform/stacks/gpu-dev)."""
    boxes = {
        name: {
            "instance_type": box.instance_type,
            "ami_id": box.ami,
            "volume_size": box.volume_size,
            "ssh_cidrs": env.box_ssh_cidrs(name),
            "key_name": box.key_name,
            "start_stopped": box.start_stopped,
        }
        for name, box in env.gpu_dev.items()
    }
    return {"vpc_id": shared["vpc_id"], "subnet_id": shared["public_subnet_ids"][0], "boxes": boxes}


@lru_cache(maxsize=None)
def declared_outputs(stack: str) -> frozenset[str]:
    """Output names a stack declares (read from its .tf files, without running terraform)."""
    folder = paths.data_dir("terraform") / "stacks" / stack
    names = set()
    for tf in folder.glob("*.tf"):
        names.update(re.findall(r'^output\s+"([^"]+)"', tf.read_text(), flags=re.M))
    return frozenset(names)


def check_references(env_name: str, env: Environment) -> None:
    """Every ${stack.output} in role env values names a stack this env applies and an output it has."""
    applied = stack_names(env_name, env)
    for role_name, role in env.roles.items():
        for key, value in role.env.items():
            for stack, output in REF.findall(value):
                where = f"environments.{env_name}.roles.{role_name}.env.{key}"
                if stack not in applied:
                    raise ConfigError(
                        f"{where} refers to stack '{stack}', which {env_name} does not apply (stacks: {', '.join(applied)})."
                    )
                if output not in declared_outputs(stack):
                    raise ConfigError(
                        f"{where} refers to output '{output}' of stack '{stack}', which has no such output "
                        f"(outputs: {', '.join(sorted(declared_outputs(stack)))})."
                    )
