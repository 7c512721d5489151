"""Make a lab from a register: one twin per host, stable loopback addresses, the overlay.

A twin's address is `<prefix>.<i // 250>.<i % 250 + 2>` with i its rank by hostname, so the
same register gives the same addresses on every `lab up`. Each twin starts compromised with a
random pre-incident `rb-admin` password; the lab seeds the product's secret store
(`<lab_dir>/state`) with those passwords, as if the pre-incident LAPS passwords had been
recovered. The lab inventory overlay (`<lab_dir>/inventory/<site>.yml`) is the product's own
inventory with every lab value as a per-host override; no product file names the lab.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rebuild.errors import ConfigError
from rebuild.inventory import build_inventory, write_inventory
from rebuild.lab import directory, images
from rebuild.lab.ca import LabCA
from rebuild.lab.context import Lab, LabConfig, TwinRecord
from rebuild.lab.state import StateStore, TwinState
from rebuild.model import Host, Platform
from rebuild.register import load_register
from rebuild.secrets import SecretStore, create_key_file, generate_secret
from rebuild.sites import SITE_NETWORKS_VAR, get_site
from rebuild.tiers import PROJECT_ROOT

DEFAULT_REGISTER = PROJECT_ROOT / "inventories" / "example" / "register.csv"
SMALL_REGISTER = PROJECT_ROOT / "inventories" / "example" / "register-small.csv"
MAX_TWINS = 250 * 250
LOCAL_ADMIN = "rb-admin"


def state_db(lab_dir: Path) -> Path:
    return lab_dir / "twins.sqlite"


def secrets_dir(lab_dir: Path) -> Path:
    """The product state dir the lab seeds (`--state-dir` / REBUILD_STATE_DIR of a rehearsal)."""
    return lab_dir / "state"


def inventory_dir(lab_dir: Path) -> Path:
    return lab_dir / "inventory"


def load_hosts(register: Path, site: str | None = None) -> list[Host]:
    """The register's hosts (strict: any problem stops the lab), optionally one site's."""
    result = load_register(register)
    result.raise_for_problems()
    hosts = [h for h in result.hosts if site is None or h.site == site]
    if not hosts:
        known = sorted({h.site for h in result.hosts})
        raise ConfigError(
            f"{register}: no host in site {site!r} (sites in this register: {', '.join(known)})"
        )
    return hosts


def _validate_prefix(prefix: str) -> None:
    parts = prefix.split(".")
    if len(parts) != 2 or parts[0] != "127" or not parts[1].isdigit() or not 0 <= int(parts[1]) <= 255:
        raise ConfigError(f"lab address prefix {prefix!r} must be 127.N (the lab lives on loopback only)")


def _mac_for(host: Host) -> str:
    if host.mac:
        return host.mac
    # No MAC in the register (some servers): a stable locally administered one.
    digest = hashlib.sha256(host.hostname.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def allocate(hosts: Sequence[Host], prefix: str) -> dict[str, TwinRecord]:
    """Stable twin records: addresses by rank of hostname."""
    _validate_prefix(prefix)
    if len(hosts) > MAX_TWINS:
        raise ConfigError(f"{len(hosts)} hosts: a lab holds at most {MAX_TWINS} twins per prefix")
    records: dict[str, TwinRecord] = {}
    macs: dict[str, str] = {}
    for i, host in enumerate(sorted(hosts, key=lambda h: h.hostname)):
        mac = _mac_for(host)
        if mac in macs:
            raise ConfigError(f"hosts {macs[mac]} and {host.hostname} share MAC {mac}")
        macs[mac] = host.hostname
        records[host.hostname] = TwinRecord(
            name=host.hostname,
            address=f"{prefix}.{i // 250}.{i % 250 + 2}",
            mac=mac,
            kind=str(host.kind),
            platform=str(host.platform),
            site=host.site,
            os=host.os,
            service=host.service,
            vm_ref=host.vm_ref or (host.hostname.lower() if host.platform is Platform.VIRTUAL else ""),
            redfish_system_id=(
                str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{host.hostname.lower()}.bmc.rebuild-lab"))
                if host.platform is Platform.PHYSICAL and host.kind == "server"
                else ""
            ),
        )
    return records


def create_twins(config: LabConfig, records: dict[str, TwinRecord]) -> tuple[Lab, dict[str, str]]:
    """A Lab with every twin in its compromised state. Returns the lab and the rb-admin passwords."""
    config.lab_dir.mkdir(parents=True, exist_ok=True)
    db = state_db(config.lab_dir)
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    store = StateStore(db)
    passwords = {name: generate_secret() for name in records}
    states: dict[str, TwinState] = {
        name: images.initial_state(record, passwords[name]) for name, record in records.items()
    }
    store.put_many(states)
    return Lab(config, store, records), passwords


def issue_certificates(ca: LabCA, records: dict[str, TwinRecord], domain: str = "") -> None:
    for record in records.values():
        names = (f"{record.name.lower()}.{domain}",) if domain else ()
        ca.issue(record.name, record.address, names)


def reset_product_state(lab_dir: Path) -> None:
    """A new lab is a new rehearsal: drop the previous one's journal, runs and secrets.

    (A stale journal saying "verified" would make the orchestrator skip fresh, compromised
    twins.) Only `<lab_dir>/state` is touched, never a state dir outside the lab.
    """
    state = secrets_dir(lab_dir)
    if state.exists():
        shutil.rmtree(state)


def product_store(lab_dir: Path) -> SecretStore:
    """The rehearsal's secret store. A rehearsal has a key of its own, in the lab directory
    (`<lab_dir>/state/vault-password`, created on first use); a real run's key is the operator's."""
    state = secrets_dir(lab_dir)
    return SecretStore(state, key_file=create_key_file(state / "vault-password"))


def seed_secrets(lab_dir: Path, passwords: dict[str, str]) -> SecretStore:
    """Write each compromised twin's rb-admin password into the product's secret store."""
    store = product_store(lab_dir)
    for name, password in passwords.items():
        store.put(name, password)
    return store


DOMAIN_JOIN_USER = "GHAL\\svc-rebuild-join"


def seed_domain_join(lab_dir: Path, sites: Sequence[str], user: str, password: str) -> None:
    """The lab domain's join credential as the redeploy role reads it: site entry `site-<site>`."""
    store = product_store(lab_dir)
    for site in sites:
        store.put(f"site-{site}", user, "domain_join_user")
        store.put(f"site-{site}", password, "domain_join_password")


def overlay_vars(lab: Lab, record: TwinRecord, ca_bundle: Path, endpoints: dict[str, Any]) -> dict[str, Any]:
    """Every lab value a host's inventory entry needs, as per-host overrides.

    `endpoints` are the reimage side's values (rebuild.lab.reimage's `endpoints()`: boot
    server, WoL listener, hypervisor API, Redfish emulator, image catalogue).
    """
    values: dict[str, Any] = {
        "ansible_host": record.address,
        "ansible_port": lab.config.winrm_https_port,
        "rebuild_ca_bundle": str(ca_bundle.resolve()),
    }
    values.update({k: v for k, v in endpoints.items() if k != "rebuild_bmc_address"})
    if record.redfish_system_id:
        values["rebuild_bmc_address"] = endpoints["rebuild_bmc_address"]
        values["rebuild_redfish_system_id"] = record.redfish_system_id
    if record.vm_ref:
        values["rebuild_vm_ref"] = record.vm_ref
    return values


def write_overlay(
    lab: Lab, hosts: Sequence[Host], ca_bundle: Path, endpoints: dict[str, Any]
) -> dict[str, Path]:
    """`<lab_dir>/inventory/<site>.yml` per site: the product inventory with lab overrides."""
    written: dict[str, Path] = {}
    header = (
        "SIMULATED lab inventory (rebuild lab): every host here is a simulated twin on loopback.\n"
        "Generated by `rebuild lab up`; do not use against real machines."
    )
    for site in sorted({h.site for h in hosts}):
        site_hosts = [h for h in hosts if h.site == site]
        overrides = {
            h.hostname: overlay_vars(lab, lab.twins[h.hostname], ca_bundle, endpoints) for h in site_hosts
        }
        inventory = build_inventory(site_hosts, hostvar_overrides=overrides)
        # The twins' loopback addresses are this site's network in the lab: the overlay says so
        # (the product checks every host's address against its site's networks).
        group = inventory["all"]["children"][get_site(site).group_name]
        group["vars"][SITE_NETWORKS_VAR] = [f"{lab.config.address_prefix}.0.0/16"]
        # The incident record an operator writes down (tier-0 gates), for the lab's directory.
        group["vars"]["rebuild_incident"] = directory.seed(lab.config.lab_dir)
        path = inventory_dir(lab.config.lab_dir) / f"{site}.yml"
        write_inventory(inventory, path, header=header)
        written[site] = path
    return written
