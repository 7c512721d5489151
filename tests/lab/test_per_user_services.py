"""Twins carry Windows' per-user services (issue 12 item 11), and hardening must leave them alone.

Microsoft Learn, "Per-user services in Windows": each per-user service is a template
(`cbdhsvc`, `CredentialEnrollmentManagerUserSvc`, `BluetoothUserService`, `PrintWorkflowUserSvc`,
`UdkUserSvc`) plus an instance `<template>_<LUID>` per logged-on user; disabling the template
breaks clipboard, Windows Hello enrolment, Bluetooth and printing for every user.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.harden.baseline import load_baseline
from rebuild.harden.compile import HostFacts, compile_host
from rebuild.lab.context import Lab, LabConfig, TwinRecord
from rebuild.lab.exec import argspec
from rebuild.lab.exec.modules import ModuleContext, load_all
from rebuild.lab.images import PER_USER_SERVICES, compromised_state
from rebuild.lab.state import StateStore

HOST = "ARL-PC-0001"


@pytest.fixture()
def lab(tmp_path: Path) -> Lab:
    store = StateStore(tmp_path / "state.sqlite")
    rec = TwinRecord(
        name=HOST,
        address="127.78.0.3",
        mac="aa:bb:cc:00:00:03",
        kind="workstation",
        platform="virtual",
        site="arlon",
        os="windows-11-23h2",
        service="emergency",
    )
    store.put(HOST, compromised_state(rec, "pre-incident-Pw1"))
    return Lab(config=LabConfig(lab_dir=tmp_path), store=store, twins={HOST: rec})


def test_twins_carry_the_per_user_templates_and_their_instances(lab: Lab) -> None:
    services = lab.state(HOST).services
    for template in PER_USER_SERVICES:
        assert template in services
        assert any(n.startswith(f"{template}_") for n in services)


def test_harden_leaves_per_user_service_templates_enabled(lab: Lab) -> None:
    facts = HostFacts(
        name=HOST,
        os="windows-11-23h2",
        kind="workstation",
        site="arlon",
        groups=("site_arlon", "kind_workstation"),
        service="emergency",
    )
    args = compile_host(load_baseline(), facts, [], protected_accounts=["rb-admin"]).module_args()
    params, _ = argspec.validate_basic(
        argspec.load_spec("win_rebuild_baseline"), args, "win_rebuild_baseline", {}
    )
    ctx = ModuleContext(
        lab=lab, twin=lab.twins[HOST], module_name="win_rebuild_baseline", params=params, raw_args=args
    )
    load_all()["win_rebuild_baseline"].handler(ctx)
    services = lab.state(HOST).services
    assert {t: services[t].start_mode for t in PER_USER_SERVICES} == {t: "Manual" for t in PER_USER_SERVICES}
