"""The secret store's key (issue 11 item 8), Ansible's environment (item 9) and the domain join
credential checked before any wipe (item 10)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rebuild.childenv import ALLOWED, child_env
from rebuild.cli import main
from rebuild.errors import ConfigError, SafetyError
from rebuild.inventory import build_inventory, write_inventory
from rebuild.journal import Journal
from rebuild.orchestrator import SiteRunOptions, run_site
from rebuild.register import SMALL_REGISTER, load_register
from rebuild.secrets import KEY_FILE_ENV, SecretStore, create_key_file


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    for var in ("REBUILD_DOMAIN_JOIN_USER", "REBUILD_DOMAIN_JOIN_PASSWORD"):
        monkeypatch.delenv(var, raising=False)


def _key(path: Path, mode: int = 0o600, content: str = "k3y-material-for-tests") -> Path:
    path.write_text(content)
    path.chmod(mode)
    return path


# -- item 8: the vault key ----------------------------------------------------------------------


def test_without_a_key_file_nothing_is_created_and_the_message_says_how(
    tmp_path: Path, no_key_env: None
) -> None:
    store = SecretStore(tmp_path / "state")
    with pytest.raises(ConfigError, match=f"{KEY_FILE_ENV} is not set.*umask 077"):
        store.put("ARL-PC-0001", "value")
    assert not (tmp_path / "state").exists()  # no key beside the secrets, no secret


def test_a_mistyped_key_path_is_refused_not_replaced(
    tmp_path: Path, no_key_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _key(tmp_path / "rebuild-vault.key")
    SecretStore(tmp_path / "state", key_file=real).put("ARL-PC-0001", "value")
    typo = tmp_path / "rebuild-vault.kye"
    monkeypatch.setenv(KEY_FILE_ENV, str(typo))
    with pytest.raises(ConfigError, match=f"vault key {typo} .*no such file"):
        SecretStore(tmp_path / "state").get("ARL-PC-0001")
    assert not typo.exists()


@pytest.mark.parametrize(
    ("mode", "shown"), [(0o666, "0666"), (0o640, "0640"), (0o604, "0604"), (0o620, "0620")]
)
def test_a_key_others_can_read_or_write_is_refused(tmp_path: Path, mode: int, shown: str) -> None:
    key = _key(tmp_path / "vault.key", mode)
    store = SecretStore(tmp_path / "state", key_file=key)
    with pytest.raises(ConfigError, match=rf"vault key {key} .*mode {shown} lets group or others.*chmod 600"):
        store.put("ARL-PC-0001", "value")
    assert not (tmp_path / "state" / "secrets").exists()


def test_a_key_owned_by_someone_else_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = _key(tmp_path / "vault.key")
    owner = key.stat().st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)  # as if another user ran rebuild
    with pytest.raises(ConfigError, match=rf"vault key {key} .*owned by uid {owner}, not by the user"):
        SecretStore(tmp_path / "state", key_file=key).put("ARL-PC-0001", "value")


def test_a_directory_or_empty_file_is_not_a_key(tmp_path: Path) -> None:
    folder = tmp_path / "keydir"
    folder.mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="not a regular file"):
        SecretStore(tmp_path / "state", key_file=folder).put("H", "v")
    empty = _key(tmp_path / "empty.key", content="")
    with pytest.raises(ConfigError, match=f"vault key {empty} .*is empty"):
        SecretStore(tmp_path / "state", key_file=empty).put("H", "v")


def test_a_private_key_of_the_user_works_and_the_store_holds_no_clear_text(tmp_path: Path) -> None:
    key = _key(tmp_path / "vault.key")
    store = SecretStore(tmp_path / "state", key_file=key)
    store.put("ARL-PC-0001", "Cl3ar-Text-Marker!")
    assert store.get("ARL-PC-0001") == "Cl3ar-Text-Marker!"
    stored = (tmp_path / "state" / "secrets" / "ARL-PC-0001.local_admin.vault").read_bytes()
    assert b"Cl3ar-Text-Marker!" not in stored and stored.startswith(b"$ANSIBLE_VAULT")


def test_a_remembering_store_decrypts_a_secret_once_and_a_rotated_one_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup's store (Ansible workers): the same sealed secret is decrypted once per process;
    a rotated secret (new sealed text) is read anew, and a plain store never remembers."""
    from ansible.parsing.vault import VaultLib

    decrypted: list[bytes] = []
    real_decrypt = VaultLib.decrypt
    monkeypatch.setattr(
        VaultLib, "decrypt", lambda self, data, **kw: decrypted.append(data) or real_decrypt(self, data, **kw)
    )
    key = _key(tmp_path / "vault.key")
    SecretStore(tmp_path / "state", key_file=key).put("ARL-PC-0001", "first-Value-1!")
    remembering = [SecretStore(tmp_path / "state", key_file=key, remember=True) for _ in range(3)]
    assert [store.get("ARL-PC-0001") for store in remembering] == ["first-Value-1!"] * 3
    assert len(decrypted) == 1
    remembering[0].rotate("ARL-PC-0001")  # the reimage replaces it: a new sealed text
    rotated = remembering[1].get("ARL-PC-0001")
    assert rotated not in (None, "first-Value-1!") and len(decrypted) == 2
    plain = SecretStore(tmp_path / "state", key_file=key)
    assert plain.get("ARL-PC-0001") == plain.get("ARL-PC-0001") == rotated and len(decrypted) == 4


def test_a_remembered_secret_is_never_served_to_another_key(tmp_path: Path) -> None:
    SecretStore(tmp_path / "state", key_file=_key(tmp_path / "a.key", content="one")).put("H", "v")
    assert SecretStore(tmp_path / "state", key_file=tmp_path / "a.key", remember=True).get("H") == "v"
    other = _key(tmp_path / "b.key", content="two")
    with pytest.raises(ConfigError, match="wrong key"):
        SecretStore(tmp_path / "state", key_file=other, remember=True).get("H")


def test_a_wrong_key_is_found_before_a_run_naming_the_key(tmp_path: Path) -> None:
    SecretStore(tmp_path / "state", key_file=_key(tmp_path / "a.key", content="one")).put("H", "v")
    other = _key(tmp_path / "b.key", content="two")
    with pytest.raises(ConfigError, match=f"with the vault key {other}: wrong key"):
        SecretStore(tmp_path / "state", key_file=other).check_opens()


def test_a_rehearsal_creates_its_own_private_key_beside_its_store(tmp_path: Path, no_key_env: None) -> None:
    store = SecretStore(tmp_path / "lab" / "state", rehearsal=True)
    store.put("ARL-PC-0001", "value")
    key = tmp_path / "lab" / "state" / "vault-password"
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    assert SecretStore(tmp_path / "lab" / "state", key_file=key).get("ARL-PC-0001") == "value"


def test_a_rehearsal_never_creates_a_key_at_a_path_the_operator_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "typo.key"))
    with pytest.raises(ConfigError, match="no such file"):
        SecretStore(tmp_path / "state", rehearsal=True).put("H", "v")
    assert not (tmp_path / "typo.key").exists() and not (tmp_path / "state" / "vault-password").exists()


def test_create_key_file_keeps_an_existing_key(tmp_path: Path) -> None:
    key = _key(tmp_path / "vault.key", content="keep-me")
    assert create_key_file(key) == key and key.read_text() == "keep-me"
    _key(key, 0o644)
    with pytest.raises(ConfigError, match="0644"):
        create_key_file(key)


# -- a site run refuses before anything is recorded ----------------------------------------------


@pytest.fixture
def arlon_inventory(tmp_path: Path) -> Path:
    hosts = [h for h in load_register(SMALL_REGISTER).hosts if h.site == "arlon"]
    path = tmp_path / "inventory" / "arlon.yml"
    path.parent.mkdir()
    write_inventory(build_inventory(hosts), path)
    return path


def test_rebuild_site_without_a_key_exits_2_and_records_nothing(
    tmp_path: Path, arlon_inventory: Path, no_key_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    code = main(
        [
            *("site", "arlon", "--inventory", str(arlon_inventory)),
            *("--state-dir", str(state), "--yes", "--new-journal"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"{KEY_FILE_ENV} is not set" in err and "Traceback" not in err
    assert not (state / "journal.sqlite").exists() and not (state / "vault-password").exists()
    assert not (state / "secrets").exists()


def test_rebuild_site_with_a_world_readable_key_exits_2(
    tmp_path: Path, arlon_inventory: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _key(tmp_path / "vault.key", 0o644)
    monkeypatch.setenv(KEY_FILE_ENV, str(key))
    state = tmp_path / "state"
    code = main(
        [
            *("site", "arlon", "--inventory", str(arlon_inventory)),
            *("--state-dir", str(state), "--yes", "--new-journal"),
        ]
    )
    assert code == 2
    assert f"vault key {key} ({KEY_FILE_ENV}): mode 0644" in capsys.readouterr().err
    assert not (state / "journal.sqlite").exists()


# -- item 10: the domain join credential, checked before any wipe ---------------------------------


def _options(inventory: Path, state: Path, **kw: object) -> SiteRunOptions:
    base: dict[str, object] = {
        "site": "arlon",
        "inventory": inventory,
        "state_dir": state,
        "operator": "test",
        "yes": False,
        "ask": lambda prompt: "not-the-site",  # the run must never get as far as a wipe here
        "say": lambda text: None,
        "new_journal": True,  # the site's first run in this state directory
    }
    base.update(kw)
    return SiteRunOptions(**base)  # type: ignore[arg-type]


def test_a_missing_domain_join_credential_stops_the_run_before_any_wipe(
    tmp_path: Path, arlon_inventory: Path, no_key_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_FILE_ENV, str(_key(tmp_path / "vault.key")))
    state = tmp_path / "state"
    with pytest.raises(ConfigError) as caught:
        run_site(_options(arlon_inventory, state))
    text = str(caught.value)
    assert "join domain ghal.lan after their wipe" in text
    assert "domain_join_user (or REBUILD_DOMAIN_JOIN_USER)" in text
    assert "domain_join_password (or REBUILD_DOMAIN_JOIN_PASSWORD)" in text and "Nothing was wiped" in text
    with Journal.in_state_dir(state) as journal:
        assert journal.runs() == []  # no run started, no confirmation asked
    assert not list(state.glob("secrets/*.vault"))  # no secret rotated

    # Half a credential is no credential.
    monkeypatch.setenv("REBUILD_DOMAIN_JOIN_USER", "GHAL\\svc-join")
    with pytest.raises(ConfigError, match=r"no domain_join_password \(or REBUILD_DOMAIN_JOIN_PASSWORD\)"):
        run_site(_options(arlon_inventory, state))


def test_the_domain_join_credential_from_the_environment_or_the_store_passes_the_check(
    tmp_path: Path, arlon_inventory: Path, no_key_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _key(tmp_path / "vault.key")
    monkeypatch.setenv(KEY_FILE_ENV, str(key))
    state = tmp_path / "state"
    monkeypatch.setenv("REBUILD_DOMAIN_JOIN_USER", "GHAL\\svc-join")
    monkeypatch.setenv("REBUILD_DOMAIN_JOIN_PASSWORD", "J0in-Passw0rd!")
    # The next interlock (the typed site name) is reached: the credential check passed.
    with pytest.raises(SafetyError, match="does not match"):
        run_site(_options(arlon_inventory, state))
    # Refused at the confirmation: nothing was imported either.
    assert SecretStore(state, key_file=key).get("site-arlon", "domain_join_password") is None

    monkeypatch.delenv("REBUILD_DOMAIN_JOIN_USER")
    monkeypatch.delenv("REBUILD_DOMAIN_JOIN_PASSWORD")
    store = SecretStore(state, key_file=key)
    store.put("site-arlon", "GHAL\\svc-join", "domain_join_user")
    store.put("site-arlon", "J0in-Passw0rd!", "domain_join_password")
    with pytest.raises(SafetyError, match="does not match"):
        run_site(_options(arlon_inventory, state))


def test_a_dry_run_needs_neither_key_nor_join_credential_to_pass_these_checks(
    tmp_path: Path, arlon_inventory: Path, no_key_env: None
) -> None:
    from rebuild.orchestrator.run import SiteRun

    run = SiteRun(_options(arlon_inventory, tmp_path / "state", dry_run=True))
    run._check_vault_key()
    _, work, _ = run.prepare()
    from rebuild.orchestrator.credentials import check_domain_join

    check_domain_join(run.store, run.site, work, dry_run=True, env={})  # a dry run joins nothing


# -- item 9: Ansible's environment is an allow-list -----------------------------------------------


def test_child_env_passes_only_the_allow_list() -> None:
    operator_shell = {
        "PATH": "/usr/bin",
        "HOME": "/home/op",
        "LANG": "C.UTF-8",
        "REBUILD_STATE_DIR": "/srv/state",
        "REBUILD_VAULT_PASSWORD_FILE": "/media/key/rebuild-vault.key",
        "ANSIBLE_WINRM_PWD": "winrm-marker",
        "ANSIBLE_BECOME_PASS": "become-marker",
        "ANSIBLE_NET_PASSWORD": "net-marker",
        "ANSIBLE_VAULT_PASSWORD_FILE": "/home/op/other.key",
        "ANSIBLE_REMOTE_USER": "Administrator",
        "AWX_API_KEY": "awx-marker",
        "RUNNER_PASSWORD": "runner-marker",
        "GITHUB_TOKEN": "gh-marker",
        "REBUILD_PROMOTE_TOKEN": "promote-marker",
        "REBUILD_DOMAIN_JOIN_PASSWORD": "join-marker",
        "REBUILD_BMC_PASSWORD": "bmc-marker",
        "HTTPS_PROXY": "http://op:proxy-marker@proxy:3128",
        "SSH_AUTH_SOCK": "/tmp/agent",
        "KRB5CCNAME": "FILE:/tmp/krb5cc",
    }
    env = child_env(operator_shell, ANSIBLE_CONFIG="/project/ansible.cfg")
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/op",
        "LANG": "C.UTF-8",
        "REBUILD_STATE_DIR": "/srv/state",
        "REBUILD_VAULT_PASSWORD_FILE": "/media/key/rebuild-vault.key",
        "ANSIBLE_CONFIG": "/project/ansible.cfg",
    }


def test_child_env_refuses_to_add_a_variable_that_is_not_allowed() -> None:
    with pytest.raises(ValueError, match="ANSIBLE_WINRM_PWD"):
        child_env({}, ANSIBLE_WINRM_PWD="x")


def test_no_allowed_name_looks_like_a_credential() -> None:
    credentialish = ("PASS", "PWD", "TOKEN", "SECRET", "KEY", "CRED", "AUTH")
    # The vault key's *path* passes (its content never does); host keys are SSH's, off for WinRM.
    names = [n for n in ALLOWED if n not in ("REBUILD_VAULT_PASSWORD_FILE", "ANSIBLE_HOST_KEY_CHECKING")]
    assert [n for n in names if any(word in n for word in credentialish)] == []


def test_preload_decrypts_each_secret_of_the_host_once_and_skips_what_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vars plugin's preload: every secret of the asked host (dotted host names too), once per
    sealed text; nothing of other hosts; a wrong key or no key is no error here (the lookup that
    needs the secret says what is wrong)."""
    from ansible.parsing.vault import VaultLib

    decrypted: list[bytes] = []
    real_decrypt = VaultLib.decrypt
    monkeypatch.setattr(
        VaultLib, "decrypt", lambda self, data, **kw: decrypted.append(data) or real_decrypt(self, data, **kw)
    )
    key = _key(tmp_path / "vault.key")
    writer = SecretStore(tmp_path / "state", key_file=key)
    writer.put("pc1.ghal.example", "own-Value-1!")
    writer.put("pc1.ghal.example", "boot-Value-2!", "local_admin_bootstrap")
    writer.put("ARL-PC-0002", "other-Value-3!")
    decrypted.clear()
    store = SecretStore(tmp_path / "state", key_file=key, remember=True)
    assert store.preload("pc1.ghal.example") == 2 and len(decrypted) == 2
    assert store.preload("pc1.ghal.example") == 2 and len(decrypted) == 2  # remembered
    assert store.get("pc1.ghal.example", "local_admin_bootstrap") == "boot-Value-2!" and len(decrypted) == 2
    assert store.preload("ARL-NOT-THERE") == 0
    wrong = SecretStore(
        tmp_path / "state", key_file=_key(tmp_path / "other.key", content="two"), remember=True
    )
    assert wrong.preload("ARL-PC-0002") == 0
    monkeypatch.delenv("REBUILD_VAULT_PASSWORD_FILE", raising=False)
    assert SecretStore(tmp_path / "state", remember=True).preload("ARL-PC-0002") == 0
    with pytest.raises(ValueError, match="remembering"):
        SecretStore(tmp_path / "state", key_file=key).preload("ARL-PC-0002")


def test_a_remembering_store_keeps_every_secret_of_a_large_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One remembered value per secret file, however many: a batch of 100 hosts read round after
    round (one task after another) decrypts each secret once, not once per round."""
    from ansible.parsing.vault import VaultLib

    key = _key(tmp_path / "vault.key")
    writer = SecretStore(tmp_path / "state", key_file=key)
    hosts = [f"ARL-PC-{n:04d}" for n in range(100)]
    for host in hosts:
        writer.put(host, f"Value-{host}!")
    decrypted: list[bytes] = []
    real_decrypt = VaultLib.decrypt
    monkeypatch.setattr(
        VaultLib, "decrypt", lambda self, data, **kw: decrypted.append(data) or real_decrypt(self, data, **kw)
    )
    store = SecretStore(tmp_path / "state", key_file=key, remember=True)
    for _ in range(3):
        assert [store.get(host) for host in hosts] == [f"Value-{host}!" for host in hosts]
    assert len(decrypted) == 100
