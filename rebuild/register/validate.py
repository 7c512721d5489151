"""Turn raw register rows into validated Hosts, finding every problem in one pass.

Strictness is the point: a wrong MAC wipes the wrong machine, a wrong service delays an
emergency room. Each row is checked on its own (formats, site, service, networks, BMC/VM
reference), then across rows (duplicates). A row with any problem yields no Host; rows in a
duplicate are all rejected, since the register cannot tell which one is right.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rebuild.model import Host, Kind, Platform
from rebuild.register.aliases import AliasTable, load_aliases
from rebuild.register.readers import RawTable
from rebuild.register.result import Problem, RegisterResult, Reject
from rebuild.sites import Site, find_site, load_sites
from rebuild.tiers import UnknownServiceError, tier_table

_HOSTNAME = re.compile(r"^[A-Z0-9](?:[A-Z0-9-]{0,13}[A-Z0-9])?$")
_MAC_SEPARATORS = re.compile(r"[\s:.\-]")
_HEX12 = re.compile(r"^[0-9a-f]{12}$")
_BMC = re.compile(r"^(?:(?P<scheme>[a-zA-Z]+)://)?(?P<host>[^/:]+)(?::(?P<port>\d{1,5}))?/?$")
_TEMPLATE_MARKERS = re.compile(r"\{[{%#]")
_APP_SPLIT = re.compile(r"\s*[;,|\n]\s*")


class RowError(ValueError):
    """One field of one row is wrong; the message says what and how to fix it."""


def normalise_hostname(text: str) -> str:
    """Upper-case NetBIOS name; an FQDN is cut to its first label.

    >>> normalise_hostname("arl-srv-dc01.ghal.lan")
    'ARL-SRV-DC01'
    """
    name = text.strip().split(".", 1)[0].upper()
    if not _HOSTNAME.match(name) or name.isdigit():
        raise RowError(
            f"invalid hostname {text.strip()!r}: Windows names are 1-15 letters, digits or '-', "
            "not all digits, not starting or ending with '-'"
        )
    return name


def normalise_mac(text: str) -> str:
    """aa:bb:cc:dd:ee:ff from any usual notation (AA-BB-..., aabb.ccdd.eeff, aabbccddeeff).

    >>> normalise_mac("AA-BB-CC-00-11-22")
    'aa:bb:cc:00:11:22'
    """
    digits = _MAC_SEPARATORS.sub("", text.strip()).lower()
    if not _HEX12.match(digits):
        raise RowError(f"malformed MAC {text.strip()!r}: expected 6 hex bytes like aa:bb:cc:dd:ee:ff")
    if int(digits[:2], 16) & 1:
        raise RowError(f"MAC {text.strip()!r} is a multicast/broadcast address, not a network card's")
    if digits == "000000000000":
        raise RowError(f"MAC {text.strip()!r} is all zeros (placeholder, not a network card's)")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def parse_ip(text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text.strip())
    except ValueError:
        raise RowError(f"malformed IP address {text.strip()!r}: expected IPv4 like 10.11.0.10") from None


def normalise_bmc(text: str) -> str:
    """https://<ip>[:port]. An IP, not a name: DNS is itself being rebuilt in tier 0."""
    match = _BMC.match(text.strip())
    if not match:
        raise RowError(f"malformed BMC address {text.strip()!r}: expected an IP or https://<ip>")
    scheme = (match["scheme"] or "https").lower()
    if scheme != "https":
        raise RowError(f"BMC address {text.strip()!r}: Redfish is reached over https only")
    try:
        host = ipaddress.IPv4Address(match["host"])
    except ValueError:
        raise RowError(
            f"BMC address {text.strip()!r} must be an IP address (name resolution may be down)"
        ) from None
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise RowError(f"BMC address {text.strip()!r}: port out of range")
    return f"https://{host}" + (f":{port}" if port else "")


def split_applications(text: str) -> tuple[str, ...]:
    return tuple(a for a in _APP_SPLIT.split(text.strip()) if a)


@dataclass(slots=True)
class _Staged:
    number: int
    cells: list[str]
    host: Host | None
    problems: list[Problem]
    keys: dict[str, str]  # field -> normalised value, for the duplicate checks


class _Checker:
    """Holds the lookups for one validation run (cached: 100,000 rows repeat a few values)."""

    def __init__(self, aliases: AliasTable, data_dir: Path | None) -> None:
        self.aliases = aliases
        self.data_dir = data_dir
        self.sites = load_sites(data_dir)
        self.tiers = tier_table(data_dir)
        self.site = lru_cache(maxsize=256)(self._site)
        self.service = lru_cache(maxsize=4096)(self._service)
        self.value = lru_cache(maxsize=1024)(self._value)

    def _site(self, text: str) -> Site:
        if not text.strip():
            raise RowError("missing site")
        site = find_site(text, self.data_dir)
        if site is None:
            raise RowError(
                f"unknown site {text.strip()!r}; known sites: {', '.join(s.label for s in self.sites)}"
            )
        return site

    def _service(self, text: str) -> tuple[str, int]:
        if not text.strip():
            raise RowError("missing service")
        try:
            key, tier = self.tiers.match(text)
        except UnknownServiceError as exc:
            raise RowError(str(exc) + " (add it to inventories/data/tiers.yml if it is right)") from None
        return key, tier.id

    def _value(self, field: str, text: str) -> str:
        if not text.strip() and field != "status":
            raise RowError(f"missing {field}")
        found = self.aliases.value(field, text)
        if found is None:
            close = self.aliases.closest_value(field, text)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            accepted = ", ".join(self.aliases.accepted(field))
            raise RowError(f"unknown {field} {text.strip()!r} (accepted: {accepted}){hint}")
        return found


def _map_columns(table: RawTable, aliases: AliasTable) -> tuple[dict[str, int], list[Problem], list[str]]:
    index: dict[str, int] = {}
    problems: list[Problem] = []
    ignored: list[str] = []
    file = str(table.path)
    for i, header in enumerate(table.headers):
        if not header:
            continue
        field = aliases.field_for(header)
        if field is None:
            ignored.append(header)
        elif field in index:
            problems.append(
                Problem(
                    file, None, header, f"column {table.headers[index[field]]!r} already gives the {field}"
                )
            )
        else:
            index[field] = i
    for field in aliases.required:
        if field not in index:
            names = ", ".join(aliases.column_names.get(field, (field,))[:6])
            problems.append(
                Problem(file, None, "", f"no column for {field} (accepted names include: {names})")
            )
    warnings = [f"{file}: column {h!r} is not a register field and was ignored" for h in ignored]
    return index, problems, warnings


def _required(parse: Callable[[str], object], what: str) -> Callable[[str], object]:
    def run(text: str) -> object:
        if not text.strip():
            raise RowError(f"missing {what}")
        return parse(text)

    return run


@dataclass
class _RowReader:
    """Reads one row into a Host, collecting a Problem per wrong field."""

    table: RawTable
    index: dict[str, int]  # field -> column position
    check: _Checker

    def cell(self, cells: list[str], field: str) -> str:
        i = self.index.get(field)
        return cells[i] if i is not None and i < len(cells) else ""

    def column(self, field: str) -> str:
        i = self.index.get(field)
        return self.table.headers[i] if i is not None else field

    def read(self, number: int, cells: list[str]) -> _Staged | str:
        """The staged row, or the status ("retired"/"spare") of a row left out."""
        problems: list[Problem] = []
        file, unit, check = str(self.table.path), self.table.unit, self.check

        def problem(field: str, message: str) -> None:
            problems.append(Problem(file, number, self.column(field), message, unit))

        def get(field: str, parse: Callable[[str], object]) -> object:
            try:
                return parse(self.cell(cells, field))
            except RowError as exc:
                problem(field, str(exc))
                return None

        status = get("status", lambda t: check.value("status", t))
        if status in ("retired", "spare"):
            return str(status)
        for i, text in enumerate(cells):
            # The static inventory is YAML Ansible trusts as templates: a register cell must
            # never smuggle Jinja into it (it would run on the controller).
            if "{" in text and _TEMPLATE_MARKERS.search(text):
                header = self.table.headers[i] if i < len(self.table.headers) else f"#{i + 1}"
                problems.append(
                    Problem(file, number, header, "contains Ansible template markers ({{, {% or {#)", unit)
                )
        hostname = get("hostname", _required(normalise_hostname, "hostname"))
        asset_tag = get("asset_tag", _required(str.strip, "asset tag"))
        kind = get("kind", lambda t: check.value("kind", t))
        platform = get("platform", lambda t: check.value("platform", t))
        os_key = get("os", lambda t: check.value("os", t))
        site = get("site", check.site)
        service = get("service", check.service)
        ip = get("ip", _required(parse_ip, "IP address"))
        mac = get("mac", _required(normalise_mac, "MAC address"))
        vm_ref = self.cell(cells, "vm_ref").strip()
        bmc = ""
        if platform == "physical" and kind == "server":
            bmc = str(get("bmc_address", _required(normalise_bmc, "BMC address (physical server)")) or "")
        elif self.cell(cells, "bmc_address").strip():
            bmc = str(get("bmc_address", normalise_bmc) or "")
        if platform == "virtual" and not vm_ref:
            problem("vm_ref", "virtual machine without hypervisor/VM reference")
        network = None
        if isinstance(site, Site) and isinstance(ip, ipaddress.IPv4Address):
            network = site.network_for(ip)
            if network is None:
                nets = ", ".join(f"{n.name} {n.cidr}" for n in site.networks)
                problem(
                    "ip",
                    f"IP {ip} is outside {site.label}'s networks ({nets}) or is a network/broadcast address",
                )
        host: Host | None = None
        if not problems:
            assert isinstance(site, Site) and isinstance(service, tuple) and network is not None
            host = Host(
                hostname=str(hostname),
                asset_tag=str(asset_tag),
                kind=Kind(str(kind)),
                platform=Platform(str(platform)),
                os=str(os_key),
                site=site.name,
                service=service[0],
                service_label=self.cell(cells, "service").strip(),
                tier=service[1],
                location=self.cell(cells, "location").strip(),
                ip=str(ip),
                mac=str(mac),
                bmc_address=bmc,
                vm_ref=vm_ref if platform == "virtual" else "",
                applications=split_applications(self.cell(cells, "applications")),
                serial=self.cell(cells, "serial").strip(),
                network=network.name,
            )
        keys = {"hostname": hostname, "asset_tag": asset_tag, "mac": mac, "ip": ip, "bmc_address": bmc}
        return _Staged(number, cells, host, problems, {k: str(v) for k, v in keys.items() if v})


def validate_table(table: RawTable, *, data_dir: Path | None = None) -> RegisterResult:
    """Validate every row of a register table; never raises for bad rows, only collects."""
    aliases = load_aliases(data_dir)
    index, file_problems, warnings = _map_columns(table, aliases)
    result = RegisterResult(
        path=table.path,
        hosts=[],
        problems=list(file_problems),
        skipped={"retired": 0, "spare": 0},
        warnings=warnings,
        headers=list(table.headers),
        delimiter=table.delimiter,
    )
    if file_problems:
        return result  # without its columns no row can be read; strict mode refuses the file
    reader = _RowReader(table, index, _Checker(aliases, data_dir))
    staged: list[_Staged] = []
    for number, cells in table.rows:
        row = reader.read(number, cells)
        if isinstance(row, str):
            result.skipped[row] = result.skipped.get(row, 0) + 1
        else:
            staged.append(row)

    _flag_duplicates(staged, str(table.path), table.unit, reader.column)

    for row in staged:
        if row.problems:
            result.problems.extend(row.problems)
            result.rejects.append(Reject(row.number, row.cells, row.problems))
        elif row.host is not None:
            result.hosts.append(row.host)
    return result


def _flag_duplicates(staged: list[_Staged], file: str, unit: str, column: Callable[[str], str]) -> None:
    """Every row sharing a hostname, asset tag, MAC, IP or BMC with another row is rejected.

    Keys come from every field that parsed, even on rows rejected for something else: a bad
    row still shows which machine it claims to be, and its twin must not pass silently.
    """
    seen: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)  # -> [(staged index, field)]
    for i, row in enumerate(staged):
        for field, value in row.keys.items():
            if field == "bmc_address":
                seen[("bmc_address", value)].append((i, field))
                # A BMC must not reuse any host's address.
                seen[("ip", value.removeprefix("https://").split(":")[0])].append((i, field))
            else:
                seen[(field, value.casefold())].append((i, field))
    labels = {
        "hostname": "hostname",
        "asset_tag": "asset tag",
        "mac": "MAC",
        "ip": "IP",
        "bmc_address": "BMC",
    }
    for (kind, value), where in seen.items():
        if len(where) < 2:
            continue
        numbers = sorted({staged[i].number for i, _ in where})
        for i, field in where:
            row = staged[i]
            others = [n for n in numbers if n != row.number]
            if not others:
                if field != "bmc_address":
                    continue  # reported once, on the BMC column
                message = f"BMC address uses the host's own IP {value}"
            elif kind == "ip" and field == "bmc_address":
                message = f"BMC address IP {value} is also used on {unit} {', '.join(map(str, others))}"
            else:
                shown = row.keys[field]
                message = f"duplicate {labels[kind]} {shown} (also on {unit} {', '.join(map(str, others))})"
            problem = Problem(file, row.number, column(field), message, unit)
            if problem not in row.problems:
                row.problems.append(problem)
