"""Where a site's batches run: locally (the default) or on an execution node reached over SSH.

A site in sites.yml may say `execution: {node: {...}}` (docs/scale-out.md). rebuild stores no SSH
key: the key comes from the operator's agent or from `identity_file`, a path the operator names.
The node's host key is pinned by `known_hosts`, one known_hosts line, so the first connection
already refuses a node that is not the one in the data (StrictHostKeyChecking=yes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rebuild.errors import ConfigError

# A user or host name that ssh takes as one argument and never as an option ("-oProxyCommand=...").
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*\Z|\[?[0-9A-Fa-f:]+\]?\Z")
_NODE_KEYS = {"host", "port", "user", "known_hosts", "identity_file", "venv", "project"}
_REQUIRED = {"host", "user", "known_hosts", "venv", "project"}


@dataclass(frozen=True, slots=True)
class ExecutionNode:
    """One execution node: where `ansible-runner worker` runs a site's batches."""

    host: str
    user: str
    known_hosts: str  # one known_hosts line for `host` (its public host key): pinned, never learned
    venv: str  # the node's virtualenv with the project installed (its bin/ansible-runner)
    project: str  # the node's copy of this project (playbooks, roles, plugins, ansible.cfg)
    port: int = 22
    identity_file: Path | None = None  # None: the key comes from the operator's ssh-agent

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def parse_execution(raw: Any, where: str) -> ExecutionNode | None:
    """A site's `execution:` value: None (absent or `local`) or its node; ConfigError otherwise."""
    if raw is None or raw == "local":
        return None
    if not isinstance(raw, dict) or set(raw) != {"node"} or not isinstance(raw["node"], dict):
        shape = "{node: {host, user, known_hosts, venv, project, ...}}"
        raise ConfigError(f"{where}: execution must be 'local' or {shape}")
    node: dict[str, Any] = raw["node"]
    where = f"{where}: execution.node"
    unknown = sorted(set(node) - _NODE_KEYS)
    if unknown:
        known = ", ".join(sorted(_NODE_KEYS))
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {known}")
    missing = sorted(_REQUIRED - set(node))
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    host, user = str(node["host"]), str(node["user"])
    if not _HOST.match(host):
        raise ConfigError(f"{where}: host {host!r} is not a host name or address")
    if not _NAME.match(user):
        raise ConfigError(f"{where}: user {user!r} is not a user name")
    port = node.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"{where}: port {port!r} must be a number from 1 to 65535")
    known_hosts = str(node["known_hosts"]).strip()
    _check_known_hosts(known_hosts, host, port, where)
    venv, project = str(node["venv"]), str(node["project"])
    for key, value in (("venv", venv), ("project", project)):
        if not PurePosixPath(value).is_absolute():
            raise ConfigError(f"{where}: {key} {value!r} must be an absolute path on the node")
    identity = node.get("identity_file")
    if identity is not None and not str(identity).strip():
        raise ConfigError(f"{where}: identity_file is empty (leave it out to use the ssh-agent)")
    return ExecutionNode(
        host=host,
        user=user,
        known_hosts=known_hosts,
        venv=venv,
        project=project,
        port=port,
        identity_file=Path(str(identity)).expanduser() if identity is not None else None,
    )


def _check_known_hosts(line: str, host: str, port: int, where: str) -> None:
    """One `hostnames keytype base64-key` line naming this host (as ssh writes it for the port)."""
    fields = line.split()
    if "\n" in line or len(fields) < 3:
        raise ConfigError(f"{where}: known_hosts must be one line 'host keytype key' (ssh-keyscan prints it)")
    if "PRIVATE KEY" in line:
        raise ConfigError(f"{where}: known_hosts holds a private key: give the node's public host key")
    names = fields[0].split(",")
    expected = host if port == 22 else f"[{host}]:{port}"
    if not fields[0].startswith("|1|") and expected not in names:
        raise ConfigError(f"{where}: known_hosts names {fields[0]!r}, not the node {expected!r}")
