"""Run the verification suites against one host and turn the outcome into journal results.

pytest runs in a child process (isolation: one host's failures or imports never leak into
the next, and a hung host can be killed on a deadline): a fork of the site run's warm
verification server when there is one (rebuild.verify.server: no interpreter start, imports or
suite collection per host), else a new `python -m pytest`. Both run pytest with the same
arguments (pytest_args), so they give the same JUnit and the same result. Its configuration -
target, credentials, expectations - goes through an inherited pipe named by file descriptor
(from the server's socket, for a fork), so the secret is never in argv (visible to every local
user via /proc), the environment, a file, the log or the JUnit XML. Both outputs are still
scanned for the secret before they are kept, as a last guard.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from defusedxml.ElementTree import parse as parse_xml  # host text lands in this XML: no entities

from rebuild.childenv import child_env
from rebuild.verify.client import ChildOutcome, ServerUnavailable, verify_through_server
from rebuild.verify.conditions import conditions_of
from rebuild.verify.expect import Expectations

SUITES = Path(__file__).resolve().parent / "suites"
REDACTED = "********"


@dataclass(frozen=True)
class VerifyTarget:
    host: str  # inventory name
    address: str  # ansible_host
    port: int = 5986
    scheme: str = "https"
    user: str = "rb-admin"
    ca_trust_path: str = ""
    cert_validation: str = "validate"


@dataclass
class VerifyResult:
    host: str
    passed: bool
    tests: int
    failures: int
    errors: int
    skipped: int
    failed_checks: list[dict[str, str]]  # [{check, message}]
    skipped_checks: list[dict[str, str]]
    junit: str  # path of the JUnit XML
    log: str
    duration_s: float
    hardening_not_verified: list[str] = field(default_factory=list)
    redacted: bool = False  # a secret had to be scrubbed from the outputs (a bug to report)
    conditions: list[str] = field(default_factory=list)  # named hold-back conditions (verify.conditions)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.passed:
            return f"{self.host}: verification passed ({self.tests} checks)"
        names = ", ".join(c["check"] for c in self.failed_checks[:8])
        if self.conditions:
            names = f"held back by {', '.join(self.conditions)}: {names}"
        more = f" (+{len(self.failed_checks) - 8} more)" if len(self.failed_checks) > 8 else ""
        return f"{self.host}: verification failed: {names}{more}"


def suite_files(kind: str) -> list[Path]:
    """Common checks, the kind's suite, the per-service suite, hardening."""
    files = [
        SUITES / "test_common.py",
        SUITES / f"test_kind_{kind}.py",
        SUITES / "test_service.py",
        SUITES / "test_hardening.py",
        SUITES / "test_patch_level.py",
        SUITES / "test_secure_boot.py",
        SUITES / "test_edr.py",
        SUITES / "test_bitlocker.py",
        SUITES / "test_laps.py",
    ]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"verification suite(s) missing: {', '.join(missing)}")
    return files


def _scrub(text: str, secrets: list[str]) -> tuple[str, bool]:
    hit = False
    for s in secrets:
        if s and s in text:
            text = text.replace(s, REDACTED)
            hit = True
    return text, hit


def _first_line(message: str) -> str:
    line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return re.sub(r"^(AssertionError|ReadError|[\w.]*Error):\s*", "", line)[:500]


def parse_junit(path: Path) -> tuple[int, int, int, int, list[dict[str, str]], list[dict[str, str]]]:
    """(tests, failures, errors, skipped, failed checks, skipped checks) from pytest's JUnit XML."""
    root = parse_xml(path).getroot()
    if root is None:  # not seen from pytest; ElementTree would have raised ParseError before
        raise ValueError(f"{path}: JUnit XML without a root element")
    tests = failures = errors = skipped = 0
    failed: list[dict[str, str]] = []
    skips: list[dict[str, str]] = []
    for case in root.iter("testcase"):
        tests += 1
        name = case.get("name", "?")
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                if tag == "failure":
                    failures += 1
                else:
                    errors += 1
                failed.append({"check": name, "message": _first_line(node.get("message") or node.text or "")})
                break
        node = case.find("skipped")
        if node is not None:
            skipped += 1
            skips.append({"check": name, "message": _first_line(node.get("message") or "")})
    return tests, failures, errors, skipped, failed, skips


def pytest_env() -> dict[str, str]:
    """The environment of the verification's pytest, the same for a new Python and the server.

    No plugin is autoloaded from the virtualenv (one installed beside rebuild, such as
    pytest-randomly, would change what runs): only rebuild's own plugin, named in pytest_args.
    (The variable works in every supported pytest; `--disable-plugin-autoload` needs 8.4.)"""
    return child_env(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")


def pytest_args(kind: str, host: str, junit: Path | None, config_fd: int) -> list[str]:
    """pytest's arguments for one host, the same in a server's fork and a new Python."""
    return [
        *[str(f) for f in suite_files(kind)],
        "-p",
        "rebuild.verify.plugin",
        f"--rebuild-config-fd={config_fd}",
        "-c",
        os.devnull,
        "--rootdir",
        str(SUITES),
        "-p",
        "no:cacheprovider",
        *([f"--junitxml={junit}"] if junit is not None else []),
        "-o",
        "junit_family=xunit2",
        "-o",
        f"junit_suite_name=verify-{host}",
        "-q",
        "--no-header",
        "-rfE",
        "--tb=line",
        "-o",
        "console_output_style=classic",
    ]


def _run_subprocess(kind: str, host: str, junit: Path, config: bytes, timeout_s: float) -> ChildOutcome:
    """`python -m pytest` for one host, killed on its deadline."""
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "pytest", *pytest_args(kind, host, junit, read_fd)]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        pass_fds=(read_fd,),
        env=pytest_env(),  # the allow-list: no credential
        cwd=str(SUITES),
    )
    os.close(read_fd)

    def feed() -> None:
        # pytest died early (its log says why): nothing more to feed.
        with contextlib.suppress(BrokenPipeError), os.fdopen(write_fd, "wb") as pipe:
            pipe.write(config)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        output, _ = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        timed_out = True
    feeder.join(timeout=5)
    return ChildOutcome(None if timed_out else proc.returncode, output, timed_out)


def run_verification(
    target: VerifyTarget,
    expectations: Expectations,
    *,
    password: str,
    run_dir: Path,
    previous_password: str = "",
    timeout_s: float = 900.0,
    server: Path | None = None,
    notices: list[str] | None = None,
) -> VerifyResult:
    """Verify one host; JUnit at <run_dir>/junit/<host>.xml, log at <run_dir>/verify/<host>.log.

    `server`: the socket of the site run's verification server. When it cannot be reached (or
    dies mid-host), the host is verified by a new Python instead, with the same result, and
    `notices` gets a line saying why."""
    if not password:
        raise ValueError(f"host {target.host}: no local admin secret to connect with")
    junit = run_dir / "junit" / f"{target.host}.xml"
    log = run_dir / "verify" / f"{target.host}.log"
    junit.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    junit.unlink(missing_ok=True)  # only this verification's own JUnit may be read below
    config = {
        "target": asdict(target),
        "password": password,
        "previous_password": previous_password,
        "expect": expectations.to_dict(),
    }
    kind = expectations.kind
    suite_files(kind)  # a missing suite is said here, before any process starts
    started = time.monotonic()
    outcome: ChildOutcome | None = None
    if server is not None:
        try:
            outcome = verify_through_server(
                server, host=target.host, kind=kind, junit=junit, timeout_s=timeout_s, config=config
            )
        except ServerUnavailable as exc:
            if notices is not None:
                notices.append(f"{target.host}: {exc}; verified by a new Python process instead")
            junit.unlink(missing_ok=True)
    if outcome is None:
        remaining = max(timeout_s - (time.monotonic() - started), 1.0)
        outcome = _run_subprocess(kind, target.host, junit, json.dumps(config).encode(), remaining)
    del config
    duration = time.monotonic() - started
    secrets = [password, previous_password]
    text, hit_log = _scrub(outcome.output.decode("utf-8", "replace"), secrets)
    log.write_text(text, encoding="utf-8")
    hit_junit = False
    if junit.exists():
        scrubbed, hit_junit = _scrub(junit.read_text(encoding="utf-8"), secrets)
        if hit_junit:
            junit.write_text(scrubbed, encoding="utf-8")
        tests, failures, errors, skipped, failed, skips = parse_junit(junit)
    else:
        tests = failures = skipped = 0
        errors = 1
        failed, skips = [], []
    if outcome.timed_out:
        failed.append({"check": "verification", "message": f"did not finish within {timeout_s:g} s"})
        errors += 1
    elif not junit.exists() or (outcome.returncode not in (0, 1) and not failed):
        tail = text.strip().splitlines()[-1:] or ["no output"]
        failed.append(
            {"check": "verification", "message": f"pytest exited {outcome.returncode}: {tail[0][:300]}"}
        )
    return VerifyResult(
        host=target.host,
        passed=not failed and tests > 0,
        tests=tests,
        failures=failures,
        errors=errors,
        skipped=skipped,
        failed_checks=failed,
        skipped_checks=skips,
        junit=str(junit),
        log=str(log),
        duration_s=round(duration, 2),
        hardening_not_verified=list(expectations.hardening_not_verified),
        redacted=hit_log or hit_junit,
        conditions=conditions_of(failed),
    )
