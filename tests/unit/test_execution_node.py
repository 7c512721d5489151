"""A site's `execution:` in sites.yml: local by default, or an SSH execution node (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild.errors import ConfigError
from rebuild.execution_node import ExecutionNode
from rebuild.sites import load_sites
from rebuild.tiers import default_data_dir

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def _node(**changes: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "host": "exec-arlon.ghal.lan",
        "user": "rebuild",
        "known_hosts": f"exec-arlon.ghal.lan {KEY}",
        "venv": "/opt/rebuild/.venv",
        "project": "/opt/rebuild",
    }
    node.update(changes)
    return {k: v for k, v in node.items() if v is not None}


def _sites_with(tmp_path: Path, execution: Any) -> Path:
    raw = yaml.safe_load((default_data_dir() / "sites.yml").read_text(encoding="utf-8"))
    raw["sites"][0]["execution"] = execution
    (tmp_path / "sites.yml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return tmp_path


def test_sites_run_locally_unless_they_name_a_node(tmp_path: Path) -> None:
    assert all(site.execution is None for site in load_sites())
    assert load_sites(_sites_with(tmp_path, "local"))[0].execution is None


def test_a_node_is_read_with_its_defaults(tmp_path: Path) -> None:
    node = load_sites(_sites_with(tmp_path, {"node": _node()}))[0].execution
    assert node == ExecutionNode(
        host="exec-arlon.ghal.lan",
        user="rebuild",
        known_hosts=f"exec-arlon.ghal.lan {KEY}",
        venv="/opt/rebuild/.venv",
        project="/opt/rebuild",
        port=22,
        identity_file=None,
    )


def test_a_node_on_another_port_with_a_key_file(tmp_path: Path) -> None:
    raw = _node(port=2222, known_hosts=f"[10.11.0.9]:2222 {KEY}", host="10.11.0.9")
    raw["identity_file"] = "~/.ssh/arlon"
    node = load_sites(_sites_with(tmp_path, {"node": raw}))[0].execution
    assert node is not None
    assert (node.port, node.label) == (2222, "rebuild@10.11.0.9:2222")
    assert node.identity_file == Path("~/.ssh/arlon").expanduser()


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ("remote", "execution must be 'local' or"),
        ({"node": _node(), "extra": 1}, "execution must be 'local' or"),
        ({"node": _node(password="x")}, "unknown key(s) password"),
        ({"node": _node(known_hosts=None)}, "missing known_hosts"),
        ({"node": _node(host="-oProxyCommand=touch /tmp/x")}, "is not a host name"),
        ({"node": _node(user="-lroot")}, "is not a user name"),
        ({"node": _node(port=0)}, "port 0 must be a number"),
        ({"node": _node(port="22")}, "port '22' must be a number"),
        ({"node": _node(venv="opt/venv")}, "venv 'opt/venv' must be an absolute path"),
        ({"node": _node(project=".")}, "project '.' must be an absolute path"),
        ({"node": _node(known_hosts="ssh-ed25519")}, "known_hosts must be one line"),
        ({"node": _node(known_hosts=f"other.ghal.lan {KEY}")}, "not the node 'exec-arlon.ghal.lan'"),
        ({"node": _node(port=2222)}, "not the node '[exec-arlon.ghal.lan]:2222'"),
        ({"node": _node(known_hosts="-----BEGIN OPENSSH PRIVATE KEY----- a b")}, "holds a private key"),
        ({"node": _node(identity_file=" ")}, "identity_file is empty"),
    ],
)
def test_bad_execution_names_the_site_and_what_is_wrong(tmp_path: Path, execution: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_sites(_sites_with(tmp_path, execution))
    assert "site arlon" in str(caught.value) and "sites.yml" in str(caught.value)
    assert message in str(caught.value)


def test_a_hashed_known_hosts_line_is_accepted(tmp_path: Path) -> None:
    line = f"|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= {KEY}"
    node = load_sites(_sites_with(tmp_path, {"node": _node(known_hosts=line)}))[0].execution
    assert node is not None and node.known_hosts == line
