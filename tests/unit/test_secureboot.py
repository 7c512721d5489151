"""The Secure Boot policy (inventories/data/secure_boot.yml) and the controller-side db check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild.errors import ConfigError
from rebuild.secureboot import load_secure_boot_policy, parse_secure_boot_policy
from rebuild.verify.conditions import conditions_of
from rebuild.verify.windows import db_trusts_uefi_ca_2023

SOURCE = Path("secure_boot.yml")


def _policy(**over: Any) -> dict[str, Any]:
    return {"default": {"secure_boot": "required", "uefi_ca_2023": "required"}, **over}


def test_the_bundled_policy_requires_both_checks_everywhere():
    policy = load_secure_boot_policy()
    for kind, service in (("workstation", "emergency"), ("server", "imaging")):
        need = policy.for_host(kind, service)
        assert (need.secure_boot, need.uefi_ca_2023) == ("required", "required")


def test_the_most_specific_entry_wins():
    policy = parse_secure_boot_policy(
        _policy(
            kinds={"server": {"uefi_ca_2023": "reported"}},
            services={"imaging": {"uefi_ca_2023": "required", "secure_boot": "reported"}},
        ),
        SOURCE,
    )
    assert policy.for_host("server", "lab").uefi_ca_2023 == "reported"
    assert policy.for_host("workstation", "lab").uefi_ca_2023 == "required"
    imaging = policy.for_host("server", "imaging")
    assert (imaging.secure_boot, imaging.uefi_ca_2023) == ("reported", "required")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "secure_boot.yml: expected a mapping"),
        (_policy(extra=1), "secure_boot.yml: unknown key(s) extra"),
        ({"default": {"secure_boot": "required"}}, "secure_boot.yml: default: missing uefi_ca_2023"),
        (_policy(kinds={"server": {"secure_boot": "maybe"}}), "kinds.server: secure_boot is 'maybe'"),
        (_policy(services={"icu": {"tpm": "required"}}), "services.icu: unknown check(s) tpm"),
        (_policy(kinds=["server"]), "secure_boot.yml: kinds: expected a mapping"),
    ],
)
def test_bad_policy_names_file_and_key(raw: Any, message: str):
    with pytest.raises(ConfigError) as err:
        parse_secure_boot_policy(raw, SOURCE)
    assert message in str(err.value)


def test_an_unreadable_policy_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"Secure Boot policy .*missing\.yml not found"):
        load_secure_boot_policy(tmp_path / "missing.yml")
    broken = tmp_path / "secure_boot.yml"
    broken.write_text("default: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_secure_boot_policy(broken)
    broken.write_text(yaml.safe_dump({"default": {"secure_boot": "on", "uefi_ca_2023": "required"}}))
    with pytest.raises(ConfigError, match=r"secure_boot.yml: default: secure_boot is 'on'"):
        load_secure_boot_policy(broken)


def test_db_check_is_microsofts_ascii_match():
    cert = list(b"\x30\x82\x00\xff") + list(b"CN=Windows UEFI CA 2023") + [0x80, 0xFE]
    assert db_trusts_uefi_ca_2023(cert) is True
    assert db_trusts_uefi_ca_2023(list(b"Microsoft Windows Production PCA 2011")) is False
    assert db_trusts_uefi_ca_2023([]) is False


def test_both_firmware_checks_hold_a_host_back_as_secure_boot():
    failed = [{"check": "test_uefi_ca_2023"}, {"check": "test_secure_boot"}, {"check": "test_patch_level"}]
    assert conditions_of(failed) == ["secure_boot", "patch_level"]
