"""The shipped example, and its agent role switched to ops-agent's dev shape the way the example's
comment says (the lines between its markers), as data: no damso code is involved."""

from __future__ import annotations

import tomllib
from pathlib import Path

from damso_ops import config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "damso.example.toml"
BEGIN, END = "# >>> agent at ops-agent dev\n", "# <<< agent at ops-agent dev\n"


def load() -> config.Config:
    return config.load(EXAMPLE)


def dev_switch() -> tuple[dict, dict]:
    """(agent role keys, agent env keys) the example's comment tells the team to set."""
    text = EXAMPLE.read_text()
    block = text[text.index(BEGIN) + len(BEGIN): text.index(END)]
    lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in block.splitlines()]
    data = tomllib.loads("\n".join(lines))
    env = data.pop("environments")["prod"]["roles"]["agent"]["env"]
    return data, env


def with_agent_dev(cfg: config.Config) -> config.Config:
    keys, env = dev_switch()
    prod = cfg.environments["prod"]
    agent = prod.roles["agent"]
    switched = agent.model_copy(update={**keys, "env": {**agent.env, **env}})
    prod = prod.model_copy(update={"roles": {**prod.roles, "agent": switched}})
    return cfg.model_copy(update={"environments": {**cfg.environments, "prod": prod}})
