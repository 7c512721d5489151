"""pytest plugin loaded into the verification process (`-p rebuild.verify.plugin`).

Reads the run's configuration - target, credentials, expectations - from a pipe whose file
descriptor the runner names (`--rebuild-config-fd`), so no secret is ever on the command line,
in the environment or in a file. Provides the fixtures the suites use and parametrizes the
per-item checks (applications, certificates, printers, hardening settings) from the
expectations, so JUnit shows one test case per item.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from rebuild.verify.expect import Expectations
from rebuild.verify.registry_keys import registry_keys_read
from rebuild.verify.windows import WindowsReads

_CONFIG = pytest.StashKey[dict[str, Any]]()


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)
    previous_password: str = field(default="", repr=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rebuild-config-fd", type=int, default=None, help="pipe carrying the run configuration"
    )


def _read_fd(fd: int) -> dict[str, Any]:
    chunks = []
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    loaded: dict[str, Any] = json.loads(b"".join(chunks))
    return loaded


def pytest_configure(config: pytest.Config) -> None:
    fd = config.getoption("--rebuild-config-fd")
    if fd is None:
        raise pytest.UsageError(
            "rebuild.verify.plugin needs --rebuild-config-fd (run it through rebuild.verify.runner)"
        )
    config.stash[_CONFIG] = _read_fd(fd)


def _cfg(config: pytest.Config) -> dict[str, Any]:
    return config.stash[_CONFIG]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    exp = Expectations.from_dict(_cfg(metafunc.config)["expect"])
    if "application" in metafunc.fixturenames:
        metafunc.parametrize("application", exp.applications, ids=[a["id"] for a in exp.applications])
    if "certificate" in metafunc.fixturenames:
        metafunc.parametrize("certificate", exp.certificates, ids=[c["id"] for c in exp.certificates])
    if "printer" in metafunc.fixturenames:
        metafunc.parametrize("printer", exp.printers, ids=[p["name"] for p in exp.printers])
    if "control" in metafunc.fixturenames:
        metafunc.parametrize("control", exp.hardening, ids=[c["id"] for c in exp.hardening])
    if "note_folder" in metafunc.fixturenames:
        folders = exp.iocs["note_folders"]
        metafunc.parametrize("note_folder", folders, ids=[f.replace("\\", "/") for f in folders])


@pytest.fixture(scope="session")
def expect(request: pytest.FixtureRequest) -> Expectations:
    return Expectations.from_dict(_cfg(request.config)["expect"])


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(_cfg(request.config)["target"])


@pytest.fixture(scope="session")
def credentials(request: pytest.FixtureRequest) -> Credentials:
    cfg = _cfg(request.config)
    return Credentials(
        user=cfg["target"]["user"],
        password=cfg["password"],
        previous_password=cfg.get("previous_password") or "",
    )


def winrm_conn_args(target: dict[str, Any], user: str, password: str) -> dict[str, Any]:
    """pywinrm Protocol arguments: NTLM (as testinfra's backend), certificate validated against the CA."""
    args: dict[str, Any] = {
        "endpoint": f"{target['scheme']}://{target['address']}:{target['port']}/wsman",
        "transport": "ntlm",
        "username": user,
        "password": password,
        "server_cert_validation": target.get("cert_validation") or "validate",
        "operation_timeout_sec": 30,
        "read_timeout_sec": 40,
    }
    if target.get("ca_trust_path"):
        args["ca_trust_path"] = target["ca_trust_path"]
    return args


@pytest.fixture(scope="session")
def windows_host(target: dict[str, Any], credentials: Credentials) -> Iterator[Any]:
    """A testinfra Host over WinRM (one shell for the session), CA bundle as the inventory names."""
    import testinfra.host

    from rebuild.verify.session import SessionShellBackend

    backend = SessionShellBackend(
        f"{target['address']}:{target['port']}",
        winrm_conn_args(target, credentials.user, credentials.password),
        no_ssl=target["scheme"] == "http",
    )
    yield testinfra.host.Host(backend)
    backend.close()


@pytest.fixture(scope="session")
def win(windows_host: Any, expect: Expectations) -> WindowsReads:
    """The host's reads; the registry keys the suites will read are fetched together at the first."""
    reads = WindowsReads(windows_host)
    reads.plan_registry_keys(registry_keys_read(expect))
    return reads
