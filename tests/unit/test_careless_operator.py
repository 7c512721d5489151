"""Issue 11, "could wipe machines nobody named": every refusal fed the input a tired operator
(or an empty shell variable) gives, checked through the CLI: exit code, the option or host named
in the message, no traceback, nothing recorded in the journal."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild.cli import build_parser, main
from rebuild.errors import ConfigError, SafetyError, StateError
from rebuild.inventory import load_inventory_hosts
from rebuild.journal import JOURNAL_FILE, Journal
from rebuild.orchestrator import SiteRunOptions, batches, run_site
from rebuild.orchestrator.interlocks import select_hosts
from rebuild.orchestrator.progress import HostLogs
from rebuild.register import SMALL_REGISTER
from rebuild.statedir import PROJECT_STATE_DIR, default_state_dir
from rebuild.tiers import PROJECT_ROOT


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default state directory and ./state are empty ones of the test, never the checkout's;
    a private vault key and the domain-join credential are there, so only the tested refusal applies."""
    monkeypatch.setenv("REBUILD_STATE_DIR", str(tmp_path / "default-state"))
    monkeypatch.chdir(tmp_path)
    key = tmp_path / "vault.key"
    key.write_text("k3y-material-for-tests")
    key.chmod(0o600)
    monkeypatch.setenv("REBUILD_VAULT_PASSWORD_FILE", str(key))
    monkeypatch.setenv("REBUILD_DOMAIN_JOIN_USER", "GHAL\\svc-join")
    monkeypatch.setenv("REBUILD_DOMAIN_JOIN_PASSWORD", "J0in-Passw0rd!")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Static inventories of the small register (arlon.yml, bastogne.yml), built once."""
    out = tmp_path_factory.mktemp("hospital")
    assert main(["inventory", "build", str(SMALL_REGISTER), "--out", str(out)]) == 0
    return out


@pytest.fixture
def site_dir(built: Path, tmp_path: Path) -> Path:
    """An inventory directory holding both sites (as an operator's inventories/hospital/)."""
    directory = tmp_path / "inventory"
    directory.mkdir()
    for name in ("arlon.yml", "bastogne.yml"):
        (directory / name).write_text((built / name).read_text(encoding="utf-8"), encoding="utf-8")
    return directory


@pytest.fixture
def state(tmp_path: Path, site_dir: Path) -> Path:
    """A state directory whose journal already knows Arlon (so only the tested refusal applies)."""
    directory = tmp_path / "state"
    with Journal(directory / JOURNAL_FILE) as journal:
        journal.ensure_hosts(h for h in load_inventory_hosts(site_dir / "arlon.yml") if h.site == "arlon")
    return directory


def _runs(state: Path) -> int:
    with Journal(state / JOURNAL_FILE) as journal:
        return len(journal.runs())


def _edit(path: Path, change: Any) -> None:
    inventory = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(inventory["all"]["children"])
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")


def _site(site_dir: Path, state: Path, *extra: str) -> list[str]:
    return ["site", "arlon", "--inventory", str(site_dir), "--state-dir", str(state), "--yes", *extra]


def _refused(capsys: pytest.CaptureFixture[str], code: int, argv: list[str], *expected: str) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "rebuild: error: " in err  # Ansible may warn before
    for text in expected:
        assert text in err, err
    return err


# -- item 1: an option that names no host is refused, never read as "every host" ----------------


@pytest.mark.parametrize(
    "option",
    [["--limit", ""], ["--limit", ","], ["--limit", " , "], ["--force-host", ""], ["--force-host", " ,"]],
)
def test_an_empty_host_list_is_refused_naming_the_option(
    option: list[str], site_dir: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(capsys, 3, _site(site_dir, state, *option), f"{option[0]} ", "names no host")
    assert _runs(state) == 0


def test_repeated_names_in_any_case_are_one_host() -> None:
    args = build_parser().parse_args(
        ["site", "arlon", "--limit", "ARL-DC01,arl-dc01,ARL-DC01", "--force-host", "a", "--force-host", "A,a"]
    )
    assert args.limit == ("ARL-DC01",)
    assert args.force_host == [("a",), ("A",)]  # flattened and made unique by rebuild.cli.site.run


@pytest.mark.parametrize(
    "argv",
    [
        ["status", ""],
        ["report", " "],
        ["plan", "site", ""],
        ["harden", "audit", ""],
        ["harden", "report", ""],
        ["inventory", "build", str(SMALL_REGISTER), "--site", ""],
        ["inventory", "build", str(SMALL_REGISTER), "--sheet", " "],
        ["site", "", "--yes"],
        ["site", "arlon", "--state-dir", ""],
        ["site", "arlon", "--inventory", ""],
    ],
)
def test_every_verb_refuses_an_empty_site_or_path(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    before = sorted(tmp_path.iterdir())
    _refused(capsys, 3, argv, "is empty")
    assert sorted(tmp_path.iterdir()) == before


# -- item 6: every option validated before anything is recorded ---------------------------------


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--breaker-threshold", "5"], "--breaker-threshold 5"),
        (["--breaker-threshold", "0"], "--breaker-threshold 0"),
        (["--breaker-threshold", "nan"], "--breaker-threshold nan"),
        (["--breaker-threshold", "many"], "--breaker-threshold 'many'"),
        (["--capacity", "0"], "--capacity 0"),
        (["--pipeline-depth", "0"], "--pipeline-depth 0"),
        (["--tier", "42"], "--tier 42"),
        (["--tier", "two"], "--tier 'two'"),
        (["--playbook", "no-such.yml"], "--playbook no-such.yml"),
        (["--operator", " "], "--operator is empty"),
    ],
)
def test_a_bad_option_is_refused_before_anything_is_recorded(
    option: list[str], expected: str, site_dir: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(capsys, 3, _site(site_dir, state, *option), expected)
    assert _runs(state) == 0
    assert not (state / "runs").exists()  # not even the run lock


def test_a_playbook_that_is_not_one_is_refused(
    site_dir: Path, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, data in (("latin1.yml", "- hosts: caf\xe9\n".encode("latin-1")), ("map.yml", b"hosts: all\n")):
        (tmp_path / name).write_bytes(data)
        _refused(
            capsys,
            3,
            _site(site_dir, state, "--playbook", str(tmp_path / name)),
            f"--playbook {tmp_path / name}",
        )
    (tmp_path / "dir.yml").mkdir()
    _refused(capsys, 3, _site(site_dir, state, "--playbook", str(tmp_path / "dir.yml")), "no such file")
    assert _runs(state) == 0


def test_the_api_validates_options_too(site_dir: Path, state: Path) -> None:
    options = SiteRunOptions(
        site="arlon", inventory=site_dir, state_dir=state, operator="t", yes=True, limit=("",)
    )
    with pytest.raises(SafetyError, match="--limit holds an empty host name"):
        run_site(options)
    assert _runs(state) == 0


# -- item 3: site variable, site group and address must agree ----------------------------------


def test_a_host_of_another_site_group_with_this_site_variable_is_refused(
    site_dir: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def relabel(children: dict[str, Any]) -> None:
        children["site_bastogne"]["hosts"]["BAS-DC01"]["rebuild_site"] = "arlon"

    _edit(site_dir / "bastogne.yml", relabel)
    err = _refused(
        capsys,
        3,
        _site(site_dir, state),
        "BAS-DC01",
        "site groups are site_bastogne",
        "outside arlon's networks",
    )
    assert "ARL-" not in err  # only the disagreeing host is named
    assert _runs(state) == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ansible_host": "10.14.16.5"}, "address 10.14.16.5 is outside arlon's networks"),
        ({"ansible_host": "arl-dc01.ghal.lan"}, "address arl-dc01.ghal.lan is outside"),
        ({"rebuild_site": "bastogne"}, "rebuild_site is 'bastogne'"),
    ],
)
def test_one_disagreeing_signal_refuses_the_run(
    change: dict[str, str], expected: str, site_dir: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def apply(children: dict[str, Any]) -> None:
        children["site_arlon"]["hosts"]["ARL-DC01"].update(change)

    _edit(site_dir / "arlon.yml", apply)
    _refused(capsys, 3, _site(site_dir, state), "ARL-DC01", expected)
    assert _runs(state) == 0


def test_a_host_in_two_site_groups_is_refused(
    site_dir: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def both(children: dict[str, Any]) -> None:
        children["site_bastogne"]["hosts"]["ARL-DC02"] = None

    _edit(site_dir / "bastogne.yml", both)
    _refused(capsys, 3, _site(site_dir, state), "ARL-DC02", "site_arlon, site_bastogne")


def test_an_inventory_may_declare_its_own_site_networks(site_dir: Path, state: Path) -> None:
    """A rehearsal's inventory (loopback addresses) says where its site is; one outside is refused."""

    def loopback(children: dict[str, Any]) -> None:
        children["site_arlon"]["vars"]["rebuild_site_networks"] = ["127.20.0.0/16"]
        for n, hv in enumerate(children["site_arlon"]["hosts"].values()):
            hv["ansible_host"] = f"127.20.0.{n + 2}"

    _edit(site_dir / "arlon.yml", loopback)
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return "no"

    options = SiteRunOptions(
        site="arlon",
        inventory=site_dir / "arlon.yml",
        state_dir=state,
        operator="t",
        ask=ask,
        say=lambda t: None,
    )
    with pytest.raises(SafetyError, match="does not match the site name"):
        run_site(options)  # every check passed: the operator was asked, and said no
    assert asked

    def stray(children: dict[str, Any]) -> None:
        children["site_arlon"]["hosts"]["ARL-DC01"]["ansible_host"] = "127.21.0.9"

    _edit(site_dir / "arlon.yml", stray)
    with pytest.raises(SafetyError, match=r"ARL-DC01: address 127\.21\.0\.9 is outside"):
        run_site(options)


# -- item 4: the register's hostname rule on every inventory read, and on every path ---------------


@pytest.mark.parametrize("bad", ["../../../PWN-0001", "arl-dc01", "ARL-DC01.ghal.lan", "CON/../X"])
def test_a_hand_written_host_name_must_pass_the_register_rule(
    bad: str, site_dir: Path, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def rename(children: dict[str, Any]) -> None:
        hosts = children["site_arlon"]["hosts"]
        hosts[bad] = dict(hosts["ARL-DC01"])  # a hand-added copy of a real host

    _edit(site_dir / "arlon.yml", rename)
    before = set(tmp_path.parent.rglob("*"))
    _refused(capsys, 2, _site(site_dir, state), repr(bad), "register's hostname rule")
    new = {p.relative_to(state) for p in set(tmp_path.parent.rglob("*")) - before}  # ValueError if outside
    assert new <= {Path("runs"), Path("runs/.lock"), Path("journal.sqlite-wal"), Path("journal.sqlite-shm")}
    assert _runs(state) == 0
    _refused(capsys, 2, ["plan", "site", "arlon", "--inventory", str(site_dir / "arlon.yml")], repr(bad))


def test_no_file_path_is_built_from_a_name_outside_the_rule(tmp_path: Path) -> None:
    logs = HostLogs(tmp_path / "run" / "hosts")
    with pytest.raises(ConfigError, match="hostname rule"):
        logs.write("../../PWN-0001", "x")
    logs.write("ARL-DC01", "x")
    assert [p.name for p in tmp_path.rglob("*.log")] == ["ARL-DC01.log"]


# -- item 2: one state directory from any folder; no silent fresh journal ---------------------------


def test_the_state_directory_is_the_same_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REBUILD_STATE_DIR", raising=False)
    here = default_state_dir()
    monkeypatch.chdir(tmp_path / "..")
    assert default_state_dir() == here == PROJECT_STATE_DIR == PROJECT_ROOT / "state"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REBUILD_STATE_DIR", "relative/state")
    assert default_state_dir() == tmp_path / "relative" / "state"  # made absolute once, here


def test_a_fresh_journal_needs_new_journal_and_names_the_existing_one(
    site_dir: Path,
    state: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REBUILD_STATE_DIR", str(state))  # the journal that knows Arlon
    elsewhere = tmp_path / "other-folder" / "state"
    for extra in ((), ("--new-journal",)):  # even with --new-journal: the site has a journal
        err = _refused(capsys, 3, _site(site_dir, elsewhere, *extra), "no journal of site arlon")
        assert f"journal is at {state / JOURNAL_FILE}: give --state-dir {state}" in err
    assert not elsewhere.exists()  # not even created
    monkeypatch.setenv("REBUILD_STATE_DIR", str(tmp_path / "empty-default"))
    err = _refused(capsys, 3, _site(site_dir, elsewhere, "--new-journal"), "no journal of site arlon")
    assert f"journal is at {state / JOURNAL_FILE}" in err  # ./state of the current folder is known
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # ./state (the state fixture's) is known too: leave it
    _refused(capsys, 3, _site(site_dir, elsewhere), "pass --new-journal")
    assert not elsewhere.exists()


def test_a_rehearsal_may_keep_its_own_journal(
    site_dir: Path, state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBUILD_STATE_DIR", str(state))  # a real journal of Arlon exists
    lab_state = tmp_path / "lab" / "state"
    options = SiteRunOptions(
        site="arlon",
        inventory=site_dir,
        state_dir=lab_state,
        operator="t",
        rehearsal=True,
        new_journal=True,
        ask=lambda prompt: "no",
        say=lambda t: None,
    )
    with pytest.raises(SafetyError, match="does not match"):
        run_site(options)  # got as far as the confirmation
    assert _runs(lab_state) == 1


def test_new_journal_allows_a_first_run(site_dir: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    options = SiteRunOptions(
        site="arlon",
        inventory=site_dir,
        state_dir=fresh,
        operator="t",
        new_journal=True,
        ask=lambda prompt: "no",
        say=lambda t: None,
    )
    with pytest.raises(SafetyError, match="does not match"):
        run_site(options)  # got as far as the confirmation
    assert _runs(fresh) == 1


# -- items 19, 20: a locked journal, a full disk, bad paths: messages with their own exit code -----


def test_a_journal_locked_by_another_process_is_exit_5_and_changes_nothing(
    site_dir: Path, state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("rebuild.journal.BUSY_TIMEOUT_S", 0.2)
    other = sqlite3.connect(state / JOURNAL_FILE, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing the journal
    try:
        _refused(capsys, 5, _site(site_dir, state, "--dry-run"), "is locked by another process", str(state))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _runs(state) == 0
    assert not [p for p in (state / "runs").iterdir() if p.is_dir()]  # no run folder either


def test_a_full_journal_is_a_state_error_and_keeps_every_earlier_change(
    tmp_path: Path, site_dir: Path
) -> None:
    first, *_ = load_inventory_hosts(site_dir / "arlon.yml")
    many = [dataclasses.replace(first, hostname=f"ARL-X{i:05d}") for i in range(2000)]
    with Journal(tmp_path / JOURNAL_FILE) as journal:
        journal.ensure_hosts([first])
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        journal._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
        with pytest.raises(StateError, match="cannot write the journal") as caught:
            journal.ensure_hosts(many)
        assert caught.value.exit_code == 5
        assert [h.name for h in journal.hosts()] == [first.hostname]  # the failed change rolled back whole
        journal.start_run("r1", "arlon", "t")  # and the journal is still usable
        assert [r.id for r in journal.runs()] == ["r1"]


def test_a_full_disk_while_the_run_folder_is_written_records_nothing(
    site_dir: Path, state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = Path.write_text

    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.name == "work.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a full disk answers a write
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    _refused(capsys, 5, _site(site_dir, state, "--dry-run"), "cannot write the run folder", "No space left")
    assert _runs(state) == 0
    assert not [p for p in (state / "runs").iterdir() if p.is_dir()]  # the half-written folder is gone


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        (["status", "--state-dir", "{tmp}/file"], 2, "no journal here"),
        (["status", "--state-dir", "{tmp}/garbage"], 2, "not a rebuild journal"),
        (["status", "--state-dir", "{tmp}/dirjournal"], 2, "is a directory, not a journal"),
        (["plan", "site", "arlon", "--inventory", "{tmp}/latin1.yml"], 2, "inventory has no hosts"),
        (["plan", "site", "arlon", "--inventory", "{tmp}/list.yml"], 2, "inventory has no hosts"),
        (["plan", "site", "arlon", "--register", "{tmp}"], 2, "{tmp}: is a folder, not a register file"),
        (["plan", "site", "arlon", "--register", "{tmp}/nope.csv"], 2, "no such register file"),
        (
            ["site", "arlon", "--inventory", "{tmp}/list.yml", "--state-dir", "{tmp}/s", "--new-journal"],
            2,
            "no hosts",
        ),
        (["site", "arlon", "--state-dir", "{tmp}/file", "--new-journal"], 3, "is a file, not a directory"),
        (
            ["inventory", "build", str(SMALL_REGISTER), "--out", "{tmp}/file"],
            3,
            "--out {tmp}/file: is a file, not",
        ),
        (
            ["report", "--state-dir", "{tmp}/garbage", "--out", "{tmp}/file"],
            3,
            "--out {tmp}/file: is a file, not",
        ),
    ],
)
def test_bad_paths_and_files_are_messages_not_tracebacks(
    argv: list[str], code: int, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / JOURNAL_FILE).write_text("not sqlite at all, " * 100, encoding="utf-8")
    (tmp_path / "dirjournal" / JOURNAL_FILE).mkdir(parents=True)
    (tmp_path / "latin1.yml").write_bytes("all:\n  hosts:\n    caf\xe9: {}\n".encode("latin-1"))
    (tmp_path / "list.yml").write_text("- a\n- b\n", encoding="utf-8")
    fill = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    _refused(capsys, code, fill, expected.replace("{tmp}", str(tmp_path)))


def test_an_os_error_without_a_file_name_is_still_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(args: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # e.g. a flush: no file name

    monkeypatch.setattr("rebuild.cli.status.run", full)
    _refused(capsys, 5, ["status"], "No space left on device", "free space")


def test_the_register_plugin_refuses_a_cached_host_name_outside_the_rule(tmp_path: Path) -> None:
    """The plugin's hosts come from the validated register; a cache file edited behind its back
    (same register stamp) is checked again before any host is added."""
    (tmp_path / "register.csv").write_text(SMALL_REGISTER.read_text(encoding="utf-8"), encoding="utf-8")
    config = tmp_path / "cached.rebuild_register.yml"
    config.write_text(
        "plugin: rebuild_register\nregister: register.csv\ncache: true\n"
        f"cache_plugin: ansible.builtin.jsonfile\ncache_connection: {tmp_path / 'cache'}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}

    def listing() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ansible-inventory", "-i", str(config), "--list"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip

    assert listing().returncode == 0
    (cached,) = [p for p in (tmp_path / "cache").iterdir() if p.is_file()]
    cached.write_text(cached.read_text(encoding="utf-8").replace("ARL-DC01", "../../../PWN-0001"))
    done = listing()
    assert "PWN-0001" not in done.stdout
    assert "'../../../PWN-0001' refused by the register's hostname rule" in done.stderr


def test_harden_audit_takes_a_site_key_and_checks_host_names(
    site_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "audit-state"
    argv = ["harden", "audit", "arlon,site_bastogne", "--inventory", str(site_dir), "--state-dir", str(state)]
    _refused(capsys, 2, argv, "unknown site 'arlon,site_bastogne'")  # never an Ansible --limit pattern

    def bad(children: dict[str, Any]) -> None:
        children["site_arlon"]["hosts"]["../../../PWN-0001"] = dict(
            children["site_arlon"]["hosts"]["ARL-DC01"]
        )

    _edit(site_dir / "arlon.yml", bad)
    argv = ["harden", "audit", "arlon", "--inventory", str(site_dir), "--state-dir", str(state)]
    _refused(capsys, 2, argv, "'../../../PWN-0001'", "hostname rule")
    assert not state.exists()  # nothing ran


@pytest.mark.parametrize("name", ["sites.yml", "tiers.yml", "register_aliases.yml"])
def test_project_data_that_is_not_utf8_is_a_message(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "inventories" / "data", data)
    (data / name).write_bytes("sites: [Marche-en-Famenne, Li\xe8ge]\n".encode("cp1252"))
    monkeypatch.setenv("REBUILD_DATA_DIR", str(data))
    _refused(
        capsys, 2, ["plan", "site", "arlon", "--register", str(SMALL_REGISTER)], f"{data / name}", "not UTF-8"
    )


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("secure_boot.yml", "default: {secure_boot: on, uefi_ca_2023: required}\n", "secure_boot is True"),
        ("edr.yml", "products: {edr-agent: {service: HarfangSensor}}\n", "products edr-agent: registry"),
    ],
)
def test_bad_verification_data_stops_plan_and_site_before_anything_runs(
    name: str,
    bad: str,
    message: str,
    tmp_path: Path,
    site_dir: Path,
    state: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    shutil.copytree(Path(os.environ.get("REBUILD_DATA_DIR") or PROJECT_ROOT / "inventories" / "data"), data)
    (data / name).write_text(bad, encoding="utf-8")
    monkeypatch.setenv("REBUILD_DATA_DIR", str(data))
    _refused(
        capsys, 2, ["plan", "site", "arlon", "--register", str(SMALL_REGISTER)], f"{data / name}", message
    )
    _refused(capsys, 2, _site(site_dir, state), f"{data / name}", message)
    assert _runs(state) == 0  # nothing recorded


def test_select_hosts_takes_a_repeated_name_once(site_dir: Path) -> None:
    hosts = load_inventory_hosts(site_dir / "arlon.yml")
    chosen = select_hosts(hosts, "arlon", limit=("ARL-DC01", "arl-dc01", "ARL-DC01"))
    assert [h.hostname for h in chosen] == ["ARL-DC01"]


def test_a_host_of_another_site_is_checked_by_its_own_site_run(site_dir: Path, state: Path) -> None:
    """BAS-DC01 (variable and group Bastogne) at an Arlon address: not on Arlon's list, and
    refused by a Bastogne run, which would otherwise wipe whatever answers at that address."""

    def move(children: dict[str, Any]) -> None:
        children["site_bastogne"]["hosts"]["BAS-DC01"]["ansible_host"] = "10.11.0.99"

    _edit(site_dir / "bastogne.yml", move)
    arlon = SiteRunOptions(
        site="arlon",
        inventory=site_dir,
        state_dir=state,
        operator="t",
        ask=lambda p: "no",
        say=lambda t: None,
    )
    with pytest.raises(SafetyError, match="does not match the site name"):
        run_site(arlon)
    bastogne = dataclasses.replace(arlon, site="bastogne", new_journal=True)
    with pytest.raises(SafetyError, match=r"BAS-DC01: address 10\.11\.0\.99 is outside bastogne's networks"):
        run_site(bastogne)


# -- issue 14 item 1: a stale golden image is refused before anything is recorded ---------------


def test_a_stale_image_refuses_the_site_run_naming_it(
    site_dir: Path,
    state: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The site's image catalogue, as the inventory names it, has an image built long ago.
    catalogue = yaml.safe_load(
        (PROJECT_ROOT / "inventories" / "data" / "images.yml").read_text(encoding="utf-8")
    )
    catalogue["images"]["windows-server-2022"]["built"] = "2019-03-01"
    images = tmp_path / "site-images.yml"
    images.write_text(yaml.safe_dump(catalogue), encoding="utf-8")
    _edit(
        site_dir / "arlon.yml",
        lambda groups: groups["site_arlon"]["vars"].update(rebuild_image_catalogue=str(images)),
    )
    _refused(
        capsys,
        2,
        _site(site_dir, state),
        "image ghal-ws2022-std-2026.11 (windows-server-2022) was built 2019-03-01",
        "the patch catalogue allows 120 days",
        "refused before anything was recorded or touched",
    )
    assert _runs(state) == 0
    with Journal(state / JOURNAL_FILE) as journal:
        assert {h.phase.value for h in journal.hosts()} == {"pending"}


def _arlon_on_a_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's data with Arlon sent to an execution node that does not exist."""
    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "inventories" / "data", data)
    sites = yaml.safe_load((data / "sites.yml").read_text(encoding="utf-8"))
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    node = {"host": "exec-arlon.invalid", "user": "rebuild", "known_hosts": f"exec-arlon.invalid {key}"}
    node.update(venv="/opt/rebuild/.venv", project="/opt/rebuild")
    sites["sites"][0]["execution"] = {"node": node}
    (data / "sites.yml").write_text(yaml.safe_dump(sites), encoding="utf-8")
    monkeypatch.setenv("REBUILD_DATA_DIR", str(data))


def test_a_dry_run_of_a_site_on_a_node_renders_on_the_controller(
    site_dir: Path, state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dry run talks to no host: what it renders stays in the run folder, nothing goes to the
    node (here one that answers the check but could run nothing)."""
    _arlon_on_a_node(tmp_path, monkeypatch)
    checked: list[str] = []
    monkeypatch.setattr(batches, "check_reachable", lambda node: checked.append(node.label))
    assert main(_site(site_dir, state, "--dry-run", "--limit", "ARL-URG-0001")) == 0
    assert checked == ["rebuild@exec-arlon.invalid:22"]
    assert [p.name for p in state.glob("runs/*/boot/unattend/*")] != []


def test_a_site_whose_execution_node_is_unreachable_starts_no_batch_and_says_why(
    site_dir: Path,
    state: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 17, faults: the node is checked before each batch; one that does not answer stops
    the run with the reason, and no host leaves where the journal had it."""
    _arlon_on_a_node(tmp_path, monkeypatch)
    err = _refused(
        capsys,
        2,
        _site(site_dir, state, "--dry-run", "--limit", "ARL-URG-0001"),
        "execution node rebuild@exec-arlon.invalid:22: unreachable",
        "no batch was started",
    )
    assert "Traceback" not in err
    with Journal(state / JOURNAL_FILE) as journal:
        assert {h.phase.value for h in journal.hosts()} == {"pending"}
        assert journal.runs()[-1].status == "stopped"
