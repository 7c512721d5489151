"""The rebuild_worker_preload vars plugin: ansible-playbook's main process decrypts each host's
secrets and loads the Jinja filter/test plugins and the rebuild_secret lookup before it forks the
task workers, so no worker derives a vault key or loads those plugins again; a secret rotated
during the run is read anew; nothing secret is printed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from rebuild.secrets import SecretStore

ROOT = Path(__file__).resolve().parents[2]

# ansible-playbook, unchanged, with ansible-vault's decryptions and the plugin files the Jinja
# filter/test and lookup loaders execute logged per process (main or worker).
_COUNTING_PLAYBOOK = """
import os, sys
from ansible.parsing.vault import VaultLib
from ansible.plugins.loader import PluginLoader
main_pid = os.getpid()
def log(what):
    with open(os.environ["DECRYPT_LOG"], "a") as out:
        out.write(("main" if os.getpid() == main_pid else "worker") + " " + what + "\\n")
real_decrypt, real_load = VaultLib.decrypt, PluginLoader._load_module_source
def decrypt(self, vaulttext, **kwargs):
    log("decrypt")
    return real_decrypt(self, vaulttext, **kwargs)
def load(self, *, python_module_name, path):
    if self.subdir in ("filter_plugins", "test_plugins", "lookup_plugins"):
        log("load")
    return real_load(self, python_module_name=python_module_name, path=path)
VaultLib.decrypt, PluginLoader._load_module_source = decrypt, load
from ansible.cli.playbook import main
sys.exit(main(["ansible-playbook", *sys.argv[1:]]))
"""

_INVENTORY = """
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    ansible_password: "{{ lookup('rebuild_secret', inventory_hostname) }}"
  hosts:
    ARL-PC-0001:
      rebuild_site: arlon
    ARL-PC-0002:
      rebuild_site: arlon
"""

_SHOW = {"ansible.builtin.debug": {"msg": "{{ ansible_password | hash('sha256') }}"}}
_SHOW_SITE = {
    "ansible.builtin.debug": {
        "msg": "{{ lookup('rebuild_secret', 'site-' ~ rebuild_site, name='image_share_user')"
        " | hash('sha256') }}"
    }
}
_ROTATE = (
    "from pathlib import Path; from rebuild.secrets import SecretStore; "
    "SecretStore(Path('{state}')).put('ARL-PC-0001', 'Rotated-Secret-2!')"
)


def _run(tmp_path: Path, env_extra: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], Counter[str]]:
    state = tmp_path / "state"
    key = tmp_path / "vault.key"
    key.write_text("a-test-vault-key-of-some-length")
    key.chmod(0o600)
    store = SecretStore(state, key_file=key)
    store.put("ARL-PC-0001", "First-Secret-1!")
    store.put("ARL-PC-0002", "Other-Secret-2!")
    store.put("ARL-PC-0001", "Bootstrap-Secret-3!", "local_admin_bootstrap")
    store.put("site-arlon", "Share-User-4!", "image_share_user")  # the site's, shared by its hosts
    playbook = [
        {
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {"name": "first", **_SHOW},
                {"name": "second", **_SHOW},
                {
                    "name": "rotate",
                    "ansible.builtin.command": {"argv": [sys.executable, "-c", _ROTATE.format(state=state)]},
                    "run_once": True,
                    "no_log": True,
                },
                {"name": "after rotation", **_SHOW},
                {"name": "site secret", **_SHOW_SITE},
            ],
        }
    ]
    (tmp_path / "playbook.yml").write_text(json.dumps(playbook))
    (tmp_path / "inventory.yml").write_text(_INVENTORY)
    (tmp_path / "counting.py").write_text(_COUNTING_PLAYBOOK)
    log = tmp_path / "decrypts.log"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_NOCOLOR": "1",
        "REBUILD_STATE_DIR": str(state),
        "REBUILD_VAULT_PASSWORD_FILE": str(key),
        "DECRYPT_LOG": str(log),
        **env_extra,
    }
    run = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "counting.py"),
            "-i",
            str(tmp_path / "inventory.yml"),
            str(tmp_path / "playbook.yml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    logged = Counter(log.read_text().splitlines()) if log.exists() else Counter()
    return run, logged


def _shown(run: subprocess.CompletedProcess[str]) -> dict[tuple[str, str], str]:
    assert run.returncode == 0, run.stdout + run.stderr
    tasks = json.loads(run.stdout)["plays"][0]["tasks"]
    return {
        (task["task"]["name"], host): result["msg"]
        for task in tasks
        if task["task"]["name"] != "rotate"
        for host, result in task["hosts"].items()
    }


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_workers_never_decrypt_a_preloaded_secret_nor_load_jinja_plugins_and_a_rotated_one_is_read_anew(
    tmp_path: Path,
) -> None:
    run, logged = _run(tmp_path, {})
    assert _shown(run) == {
        ("first", "ARL-PC-0001"): _sha("First-Secret-1!"),
        ("second", "ARL-PC-0001"): _sha("First-Secret-1!"),
        ("after rotation", "ARL-PC-0001"): _sha("Rotated-Secret-2!"),
        ("first", "ARL-PC-0002"): _sha("Other-Secret-2!"),
        ("second", "ARL-PC-0002"): _sha("Other-Secret-2!"),
        ("after rotation", "ARL-PC-0002"): _sha("Other-Secret-2!"),
        ("site secret", "ARL-PC-0001"): _sha("Share-User-4!"),
        ("site secret", "ARL-PC-0002"): _sha("Share-User-4!"),
    }
    # The hosts' three secrets, the site's one and the rotated one, each once, all in the main process.
    assert logged["main decrypt"] == 5 and logged["worker decrypt"] == 0
    assert logged["main load"] > 0 and logged["worker load"] == 0
    secrets = (
        "First-Secret-1!",
        "Other-Secret-2!",
        "Rotated-Secret-2!",
        "Bootstrap-Secret-3!",
        "Share-User-4!",
    )
    for secret in secrets:
        assert secret not in run.stdout + run.stderr


def test_without_the_preload_every_worker_decrypts_and_loads_for_itself(tmp_path: Path) -> None:
    """The same run with only Ansible's default vars plugin: what the preload saves (and proof that
    the count above sees the workers' decryptions)."""
    run, logged = _run(tmp_path, {"ANSIBLE_VARS_ENABLED": "host_group_vars"})
    assert _shown(run)[("after rotation", "ARL-PC-0001")] == _sha("Rotated-Secret-2!")
    # One per task and host (four on two hosts, the rotation once) and the site secret per host.
    assert logged["main decrypt"] == 0 and logged["worker decrypt"] == 11
    assert logged["worker load"] > 0


# Asks Ansible's vars loader for the plugin as the strategy does (per task and host), counting the
# YAML parses of plugin documentation it triggers.
_GET_PLUGIN_THRICE = """
import ansible.plugins.loader as loader
from ansible import constants as C
from ansible.vars.plugins import _prime_vars_loader

loader.init_plugin_loader()
_prime_vars_loader()
parsed = []
real_load = loader.yaml.load
def counting(stream, Loader):
    parsed.append(1)
    return real_load(stream, Loader=Loader)
loader.yaml.load = counting
for _ in range(3):
    assert loader.vars_loader.get("rebuild_worker_preload") is not None
print(len(parsed), C.config.has_configuration_definition("vars", "rebuild_worker_preload"))
"""


def test_the_plugins_documentation_is_parsed_once_not_at_every_task() -> None:
    """Ansible records a plugin's configuration only when its DOCUMENTATION declares options, and
    parses the DOCUMENTATION of one without any again at each vars_loader.get(): every task and
    host, in ansible-playbook's main process (13 % of its CPU in a 5-host batch)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    out = subprocess.run(
        [sys.executable, "-c", _GET_PLUGIN_THRICE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["0", "True"]
