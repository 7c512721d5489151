"""rebuild.node_agent (issue 17): what runs on an execution node for one batch, fed as ssh feeds it.

The worker is a stand-in shell script (the real `ansible-runner worker` runs in
tests/integration/test_node_over_ssh.py): it records what it read and what it found in the
agent's folder, then waits for its gate or for a signal.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret

from rebuild import node_agent
from rebuild.orchestrator.credentials import batch_secrets
from rebuild.secrets import SecretStore

# Records its stdin and the folder's secrets, then waits for the gate file (or is stopped).
FAKE_WORKER = """#!/bin/sh
pdd=$3
top=$(dirname "$pdd")
cat > "$OUT/job"
ls -l "$top/state/secrets" "$top/state/vault-key" > "$OUT/secrets" 2>&1
cat "$top/state/secrets/"* "$top/state/vault-key" > "$OUT/contents" 2>&1
trap 'echo stopped > "$OUT/signal"; exit 143' TERM
i=0
while [ ! -e "$top/gates/t1-b001" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done
[ -e "$top/gates/t1-b001-slots/PC-1" ] && echo slot > "$OUT/slot"
cat "$top/gates/t1-b001-slots/PC-2.cancel" > "$OUT/cancel" 2>/dev/null
echo '{"eof": true}'
"""


def _agent(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """The agent as ssh starts it on a node: its stdin is the session's, its stdout the stream."""
    script = tmp_path / "fake-runner"
    script.write_text(FAKE_WORKER, encoding="utf-8")
    script.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    folder = Path(f"/tmp/rebuild-worker-unit-{secrets.token_hex(8)}")
    agent = subprocess.Popen(
        [sys.executable, "-m", "rebuild.node_agent", str(folder), str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OUT": str(out)},
    )
    return agent, folder, out


def _send(agent: subprocess.Popen[bytes], data: bytes) -> None:
    assert agent.stdin is not None
    agent.stdin.write(data)
    agent.stdin.flush()


def _header(job: bytes, key: str | None = "k3y", secrets: dict[str, str] | None = None) -> bytes:
    head = {"job_bytes": len(job), "key": key, "secrets": secrets or {}}
    return json.dumps(head).encode() + b"\n" + job


def test_the_agent_feeds_the_job_writes_the_secrets_opens_gates_and_removes_its_folder(
    tmp_path: Path,
) -> None:
    agent, folder, out = _agent(tmp_path)
    job = b'{"kwargs": {}}\n' * 5000  # more than one pipe buffer
    _send(agent, _header(job, secrets={"PC-1.local_admin.vault": "$ANSIBLE_VAULT;sealed-pc1"}))
    time.sleep(0.3)
    _send(agent, b'{"open": "t1-b001-slots/PC-1"}\n')
    _send(agent, b'{"cancel": "t1-b001-slots/PC-2", "reason": "the site is stopping"}\n')
    _send(agent, b'{"open": "../../escape"}\n{"open": "/tmp/x-escape"}\nnot json\n')  # refused
    _send(agent, b'{"open": "t1-b001"}\n')
    agent.wait(timeout=20)  # the worker saw its gate and ended; the controller closes stdin after
    stream, said = agent.communicate(timeout=20)
    assert agent.returncode == 0, said
    assert (out / "job").read_bytes() == job  # exactly the job's bytes: no header, no control line
    listing = (out / "secrets").read_text()
    assert "PC-1.local_admin.vault" in listing and listing.count("-rw-------") == 2, listing
    assert (out / "contents").read_text() == "$ANSIBLE_VAULT;sealed-pc1k3y"
    assert (out / "slot").exists()
    assert (out / "cancel").read_text() == "the site is stopping\n"
    assert said.decode().count("control line refused") == 3
    assert not Path("/tmp/x-escape").exists() and not (folder.parent.parent / "escape").exists()
    assert stream == b'{"eof": true}\n'  # the worker's stdout only, nothing of the agent
    assert not folder.exists() and f"{node_agent.REMOVED_LINE}{folder}" in said.decode()


def test_the_end_of_the_session_stops_the_worker_and_the_folder_still_goes(tmp_path: Path) -> None:
    agent, folder, out = _agent(tmp_path)
    _send(agent, _header(b"job\n"))
    time.sleep(0.5)
    _, said = agent.communicate(timeout=10)  # stdin closed: the connection is cut, no gate comes
    assert (out / "signal").read_text() == "stopped\n"
    assert agent.returncode != 0
    assert not folder.exists() and f"{node_agent.REMOVED_LINE}{folder}" in said.decode()


def test_an_existing_folder_is_not_taken_over(tmp_path: Path) -> None:
    agent, folder, _ = _agent(tmp_path)
    agent.kill()
    agent.wait()
    folder.mkdir(exist_ok=True)
    try:
        (folder / "someone-elses").write_text("kept")
        again = subprocess.run(
            [sys.executable, "-m", "rebuild.node_agent", str(folder), "ansible-runner"],
            input=_header(b"job\n"),
            capture_output=True,
            check=False,
        )
        assert again.returncode == 1 and b"FileExistsError" in again.stderr
        assert (folder / "someone-elses").read_text() == "kept"
    finally:
        shutil.rmtree(folder)
    elsewhere = subprocess.run(
        [sys.executable, "-m", "rebuild.node_agent", str(tmp_path / "x"), "ansible-runner"],
        capture_output=True,
        check=False,
    )
    assert elsewhere.returncode == 2 and not (tmp_path / "x").exists()


def test_a_batch_on_a_node_gets_only_its_own_secrets_sealed_with_a_key_of_its_own(tmp_path: Path) -> None:
    key_file = tmp_path / "controller.key"
    key_file.write_text("controller-key")
    key_file.chmod(0o600)
    store = SecretStore(tmp_path / "state", key_file=key_file)
    store.put("PC-1", "pc1-admin")
    store.put("PC-1", "pc1-bootstrap", "local_admin_bootstrap")
    store.put("PC-2", "pc2-admin")
    store.put("site-arlon", "join-password", "domain_join_password")
    store.put("site-bastogne", "other-site", "domain_join_password")
    sent = batch_secrets(store, ["PC-1", "site-arlon"])
    assert sorted(sent.files) == [
        "PC-1.local_admin.vault",
        "PC-1.local_admin_bootstrap.vault",
        "site-arlon.domain_join_password.vault",
    ]
    opener = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(sent.key.encode()))])
    assert opener.decrypt(sent.files["site-arlon.domain_join_password.vault"]) == b"join-password"
    assert "controller-key" not in sent.key and sent.key != batch_secrets(store, ["PC-1"]).key
    controller = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(b"controller-key"))])
    try:
        controller.decrypt(sent.files["PC-1.local_admin.vault"])
        opened_with_the_store_key = True
    except Exception:
        opened_with_the_store_key = False
    assert not opened_with_the_store_key
    assert "pc1-admin" not in repr(sent)


def test_the_agent_accepts_every_wait_file_the_orchestrator_names_and_only_those(tmp_path: Path) -> None:
    """Batch gate, imaging slot and redeploy gate (a held batch on a node opens it through the
    channel too): the names the channel sends are the ones the agent lets through."""
    from rebuild import contract
    from rebuild.node_ssh import NodeChannel

    channel = NodeChannel()
    gates = Path(channel.gates)
    waits = (
        contract.gate_file(gates, "t1-b002"),
        contract.slot_file(contract.slot_dir(gates, "t1-b002"), "ARL-URG-0001"),
        contract.redeploy_gate_file(gates, "t1-b002"),
    )
    for path in waits:
        name = channel._name(path)
        assert node_agent._gate_path(tmp_path, name) == tmp_path / node_agent.GATES / name
    with pytest.raises(ValueError, match="refused"):
        node_agent._gate_path(tmp_path, "t1-b002-slots/PC/../../x")
