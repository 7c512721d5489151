"""Turn raw register rows into validated Hosts, finding every problem in one pass.

Strictness is the point: a wrong MAC wipes the wrong machine, a wrong service delays an
emergency room. Each row is checked on its own (formats, site, service, networks, BMC/VM
reference), then across rows (duplicates). A row with any problem yields no Host; rows in a
duplicate are all rejected, since the register cannot tell which one is right.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rebuild.applications import Catalogue, load_catalogue
from rebuild.datadir import default_data_dir
from rebuild.model import Host, Kind, Platform
from rebuild.register.aliases import FIELDS, AliasTable, load_aliases
from rebuild.register.limits import MAX_CELL_CHARS, MAX_ROWS_NAMED, cell_problem, shown
from rebuild.register.readers import RawTable
from rebuild.register.result import Problem, RegisterResult, Reject
from rebuild.sites import Site, find_site, load_sites
from rebuild.tiers import UnknownServiceError, tier_table

_HOSTNAME = re.compile(r"^[A-Z0-9](?:[A-Z0-9-]{0,13}[A-Z0-9])?$")
_MAC_SEPARATORS = re.compile(r"[\s:.\-]")
_HEX12 = re.compile(r"^[0-9a-f]{12}$")
_MAC_COMMON = re.compile(r"^\s*" + r"([0-9a-fA-F]{2})[:-]" * 5 + r"([0-9a-fA-F]{2})\s*$")
_MULTICAST_FIRST = frozenset(f"{n:02x}" for n in range(256) if n & 1)
_OCTET = r"(0|[1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9]|25[0-5])"
_IPV4 = re.compile(rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$")
_BMC = re.compile(r"^(?:(?P<scheme>[a-zA-Z]+)://)?(?P<host>[^/:]+)(?::(?P<port>\d{1,5}))?/?$")
_TEMPLATE_MARKERS = re.compile(r"\{[{%#]")
_APP_SPLIT = re.compile(r"\s*[;,|\n]\s*")

# Names Windows will not take for a computer, beyond the character rule:
# - device names: a file named after the host (logs, boot files, reports) would open the
#   device instead (learn.microsoft.com/en-us/windows/win32/fileio/naming-a-file, "Naming
#   conventions": CON, PRN, AUX, NUL, COM1-COM9, LPT1-LPT9, with or without an extension);
# - the words Active Directory reserves for computer names ("Naming conventions in Active
#   Directory for computers, domains, sites, and OUs", learn.microsoft.com/en-us/troubleshoot/
#   windows-server/identity/naming-conventions-for-computer-domain-site-ou, "Table of reserved
#   words"). Its entries with a space (AUTHENTICATED USER, NT AUTHORITY...) already fail the
#   character rule; the single words are listed here.
DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)), *(f"LPT{n}" for n in range(1, 10))}
)
AD_RESERVED_WORDS = frozenset(
    {"ANONYMOUS", "BATCH", "BUILTIN", "DIALUP", "INTERACTIVE", "INTERNET", "LOCAL", "NETWORK",
     "NULL", "PROXY", "RESTRICTED", "SELF", "SERVER", "SERVICE", "SYSTEM", "USERS", "WORLD"}
)  # fmt: skip


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
            f"invalid hostname {shown(text)}: Windows names are 1-15 letters, digits or '-', "
            "not all digits, not starting or ending with '-'"
        )
    if name in DEVICE_NAMES:
        raise RowError(
            f"invalid hostname {shown(text)}: {name} is a Windows device name (reserved names rule: "
            "CON, PRN, AUX, NUL, COM1-9, LPT1-9 cannot name a file, and files are named after hosts)"
        )
    if name in AD_RESERVED_WORDS:
        raise RowError(
            f"invalid hostname {shown(text)}: {name} is a word Active Directory reserves for computer "
            "names (reserved names rule: Microsoft's 'Naming conventions in Active Directory', table of "
            "reserved words)"
        )
    return name


def normalise_mac(text: str) -> str:
    """aa:bb:cc:dd:ee:ff from any usual notation (AA-BB-..., aabb.ccdd.eeff, aabbccddeeff).

    >>> normalise_mac("AA-BB-CC-00-11-22")
    'aa:bb:cc:00:11:22'
    """
    match = _MAC_COMMON.match(text)
    if match:  # the usual aa:bb:cc:dd:ee:ff / AA-BB-..: one regex, no rebuilding
        digits = "".join(match.groups()).lower()
        if digits[:2] not in _MULTICAST_FIRST and digits != "000000000000":
            return ":".join(match.groups()).lower()
    digits = _MAC_SEPARATORS.sub("", text.strip()).lower()
    if not _HEX12.match(digits):
        raise RowError(f"malformed MAC {shown(text)}: expected 6 hex bytes like aa:bb:cc:dd:ee:ff")
    if int(digits[:2], 16) & 1:
        raise RowError(f"MAC {shown(text)} is a multicast/broadcast address, not a network card's")
    if digits == "000000000000":
        raise RowError(f"MAC {shown(text)} is all zeros (placeholder, not a network card's)")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def normalise_bmc(text: str) -> str:
    """https://<ip>[:port]. An IP, not a name: DNS is itself being rebuilt in tier 0."""
    match = _BMC.match(text.strip())
    if not match:
        raise RowError(f"malformed BMC address {shown(text)}: expected an IP or https://<ip>")
    scheme = (match["scheme"] or "https").lower()
    if scheme != "https":
        raise RowError(f"BMC address {shown(text)}: Redfish is reached over https only")
    try:
        host = ipaddress.IPv4Address(match["host"])
    except ValueError:
        raise RowError(
            f"BMC address {shown(text)} must be an IP address (name resolution may be down)"
        ) from None
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise RowError(f"BMC address {shown(text)}: port out of range")
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
        self._catalogue: Catalogue | None = None

    # One cached lookup per fixed-vocabulary field (a register repeats a handful of values).
    def status(self, text: str) -> str:
        return self.value("status", text)

    def kind(self, text: str) -> str:
        return self.value("kind", text)

    def platform(self, text: str) -> str:
        return self.value("platform", text)

    def os(self, text: str) -> str:
        return self.value("os", text)

    @staticmethod
    def ip(text: str) -> tuple[str, int]:
        """(dotted quad, integer) of an IPv4 address; strict like ipaddress (no leading zeros)."""
        t = text.strip()
        if not t:
            raise RowError("missing IP address")
        match = _IPV4.match(t)
        if match:  # 0-255 each, no leading zeros (as ipaddress; "010" is not 10 nor 8)
            a, b, c, d = map(int, match.groups())
            return t, (a << 24) | (b << 16) | (c << 8) | d
        raise RowError(f"malformed IP address {shown(t)}: expected IPv4 like 10.11.0.10")

    def _site(self, text: str) -> Site:
        if not text.strip():
            raise RowError("missing site")
        site = find_site(text, self.data_dir)
        if site is None:
            raise RowError(
                f"unknown site {shown(text)}; known sites: {', '.join(s.label for s in self.sites)}"
            )
        return site

    def _service(self, text: str) -> tuple[str, int]:
        if not text.strip():
            raise RowError("missing service")
        try:
            key, tier = self.tiers.match(text)
        except UnknownServiceError as exc:
            hint = f"; closest known: {', '.join(exc.suggestions)}" if exc.suggestions else ""
            raise RowError(
                f"unknown service {shown(text)}{hint} (add it to inventories/data/tiers.yml if it is right)"
            ) from None
        return key, tier.id

    def applications(self, text: str) -> tuple[str, ...]:
        """The register's applications, each known to the catalogue (by id or DisplayName): an
        unknown one is found now, before any wipe, not in the redeploy phase after it."""
        names = split_applications(text)
        if not names:
            return ()
        if self._catalogue is None:
            self._catalogue = load_catalogue(data_dir=self.data_dir or default_data_dir())
        catalogue = self._catalogue
        unknown = [name for name in names if catalogue.application_id(name) is None]
        if unknown:
            known = sorted(catalogue.applications)
            listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
            names_shown = ", ".join(shown(u) for u in unknown[:5])
            raise RowError(
                f"unknown application{'s' if len(unknown) > 1 else ''} {names_shown}: "
                f"not in the catalogue {catalogue.source} (known ids: {listed})"
            )
        return names

    def _value(self, field: str, text: str) -> str:
        if not text.strip() and field != "status":
            raise RowError(f"missing {field}")
        found = self.aliases.value(field, text)
        if found is None:
            close = self.aliases.closest_value(field, text)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            accepted = ", ".join(self.aliases.accepted(field))
            raise RowError(f"unknown {field} {shown(text)} (accepted: {accepted}){hint}")
        return found


def _map_columns(table: RawTable, aliases: AliasTable) -> tuple[dict[str, int], list[Problem], list[str]]:
    index: dict[str, int] = {}
    problems: list[Problem] = []
    ignored: list[str] = []
    file = str(table.path)
    for i, header in enumerate(table.headers):
        if not header:
            continue
        trouble = cell_problem(header)
        if trouble is not None:
            problems.append(Problem(file, None, header, f"column name {trouble}"))
            continue
        field = aliases.field_for(header)
        if field is None:
            ignored.append(header)
        elif field in index:
            problems.append(
                Problem(
                    file,
                    None,
                    header,
                    f"column {shown(table.headers[index[field]])} already gives the {field}",
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
    warnings = [f"{file}: column {shown(h)} is not a register field and was ignored" for h in ignored]
    return index, problems, warnings


def _required(parse: Callable[[str], object], what: str) -> Callable[[str], object]:
    def run(text: str) -> object:
        if not text.strip():
            raise RowError(f"missing {what}")
        return parse(text)

    return run


_HOSTNAME_REQ = _required(normalise_hostname, "hostname")
_ASSET_REQ = _required(str.strip, "asset tag")
_MAC_REQ = _required(normalise_mac, "MAC address")
_BMC_REQ = _required(normalise_bmc, "BMC address (physical server)")
_KINDS = {str(k): k for k in Kind}
_PLATFORMS = {str(p): p for p in Platform}


class _RowReader:
    """Reads one row into a Host, collecting a Problem per wrong field.

    Written for 100,000-row registers: column positions resolved once, rows padded once,
    address checks on integers, value lookups cached.
    """

    def __init__(self, table: RawTable, index: dict[str, int], check: _Checker) -> None:
        self.table = table
        self.index = index
        self.check = check
        self.width = len(table.headers)
        # Position of each field; a field without a column reads the extra "" cell at the end.
        self.at = {field: index.get(field, self.width) for field in FIELDS}
        self.seen: dict[str, dict[str, Any]] = {
            f: {} for f in ("status", "kind", "platform", "os", "site", "service", "applications")
        }
        self.ranges = {
            site.name: [
                (int(n.cidr.network_address), int(n.cidr.broadcast_address), n) for n in site.networks
            ]
            for site in check.sites
        }

    def _known(self, field: str, text: str, lookup: Callable[[str], Any]) -> Any:
        """A register repeats a handful of values per field: look each text up once."""
        table = self.seen[field]
        found = table.get(text)
        if found is None:
            found = table[text] = lookup(text)  # raises RowError for a bad value: not cached
        return found

    def column(self, field: str) -> str:
        i = self.index.get(field)
        return self.table.headers[i] if i is not None else field

    def read(self, number: int, cells: list[str]) -> _Staged | str:
        """The staged row, or the status ("retired"/"spare") of a row left out."""
        width = self.width
        row = cells[:width] + [""] * (width + 1 - min(len(cells), width))
        if not self.table.bad_cells.get(number) and self._cells_fit(cells):
            try:
                return self._read_valid(number, cells, row)
            except RowError:
                pass
        return self._read_collecting(number, cells, row)

    def _cells_fit(self, cells: list[str]) -> bool:
        """No cell too long, none with a control character (cheap: the common case)."""
        if cells and max(map(len, cells)) > MAX_CELL_CHARS:
            return False
        return not (self.table.has_controls and any(cell_problem(text) for text in cells))

    def _cell_troubles(self, number: int, cells: list[str]) -> dict[int, str]:
        """Column index -> why that cell cannot be read (wrong type, too long, control character)."""
        troubles = dict(self.table.bad_cells.get(number) or {})
        for i, text in enumerate(cells):
            if i not in troubles:
                trouble = cell_problem(text)
                if trouble is not None:
                    troubles[i] = trouble
        return troubles

    def header(self, i: int) -> str:
        return self.table.headers[i] if i < self.width else f"#{i + 1}"

    def _read_valid(self, number: int, cells: list[str], row: list[str]) -> _Staged | str:
        """Fast path for a good row: the same checks as `_read_collecting`, raising RowError at
        the first problem so that path re-reads the row and reports every problem of it."""
        at, check = self.at, self.check
        status = str(self._known("status", row[at["status"]], check.status))
        if status == "retired" or status == "spare":
            return status
        if self.table.has_braces and any("{" in text and _TEMPLATE_MARKERS.search(text) for text in row):
            raise RowError("template markers")
        hostname = normalise_hostname(row[at["hostname"]])
        asset_tag = row[at["asset_tag"]].strip()
        if not asset_tag:
            raise RowError("missing asset tag")
        kind = self._known("kind", row[at["kind"]], check.kind)
        platform = self._known("platform", row[at["platform"]], check.platform)
        os_key = self._known("os", row[at["os"]], check.os)
        site = self._known("site", row[at["site"]], check.site)
        service_key, tier = self._known("service", row[at["service"]], check.service)
        ip, ip_value = check.ip(row[at["ip"]])
        mac = normalise_mac(row[at["mac"]])
        vm_ref = row[at["vm_ref"]].strip()
        bmc_text = row[at["bmc_address"]]
        bmc = (
            normalise_bmc(bmc_text)
            if (platform == "physical" and kind == "server") or bmc_text.strip()
            else ""
        )
        if platform == "virtual" and not vm_ref:
            raise RowError("virtual machine without reference")
        for lo, hi, found in self.ranges[site.name]:
            if lo < ip_value < hi:
                network = found
                break
        else:
            raise RowError("outside the site's networks")
        applications = row[at["applications"]]
        apps = self._known("applications", applications, check.applications) if applications else ()
        host = Host(
            hostname=hostname,
            asset_tag=asset_tag,
            kind=_KINDS[kind],
            platform=_PLATFORMS[platform],
            os=os_key,
            site=site.name,
            service=service_key,
            service_label=row[at["service"]].strip(),
            tier=tier,
            location=row[at["location"]].strip(),
            ip=ip,
            mac=mac,
            bmc_address=bmc,
            vm_ref=vm_ref if platform == "virtual" else "",
            applications=apps,
            serial=row[at["serial"]].strip(),
            network=network.name,
        )
        keys = {"hostname": hostname, "asset_tag": asset_tag, "mac": mac, "ip": ip}
        if bmc:
            keys["bmc_address"] = bmc
        return _Staged(number, cells, host, [], keys)

    def _read_collecting(self, number: int, cells: list[str], row: list[str]) -> _Staged | str:
        """Slow path: check every field on its own and collect a Problem for each wrong one."""
        at, check = self.at, self.check
        problems: list[Problem] = []
        troubles = self._cell_troubles(number, cells)

        def get(field: str, parse: Callable[[str], object]) -> object:
            if at[field] in troubles:
                return None  # reported below, once, with the column
            try:
                return parse(row[at[field]])
            except RowError as exc:
                problems.append(
                    Problem(str(self.table.path), number, self.column(field), str(exc), self.table.unit)
                )
                return None

        status = get("status", check.status)
        if status == "retired" or status == "spare":
            return str(status)
        for i, trouble in sorted(troubles.items()):
            problems.append(Problem(str(self.table.path), number, self.header(i), trouble, self.table.unit))
        for i, text in enumerate(row if self.table.has_braces else ()):
            # The static inventory is YAML Ansible trusts as templates: a register cell must
            # never smuggle Jinja into it (it would run on the controller).
            if "{" in text and _TEMPLATE_MARKERS.search(text):
                problems.append(
                    Problem(
                        str(self.table.path), number, self.header(i),
                        "contains Ansible template markers ({{, {% or {#)", self.table.unit,
                    )
                )  # fmt: skip
        hostname = get("hostname", _HOSTNAME_REQ)
        asset_tag = get("asset_tag", _ASSET_REQ)
        kind = get("kind", check.kind)
        platform = get("platform", check.platform)
        os_key = get("os", check.os)
        site = get("site", check.site)
        service = get("service", check.service)
        ip = get("ip", check.ip)
        mac = get("mac", _MAC_REQ)
        apps = get("applications", check.applications) if row[at["applications"]].strip() else ()
        vm_ref = row[at["vm_ref"]].strip()
        bmc = ""
        if platform == "physical" and kind == "server":
            bmc = str(get("bmc_address", _BMC_REQ) or "")
        elif row[at["bmc_address"]].strip():
            bmc = str(get("bmc_address", normalise_bmc) or "")
        if platform == "virtual" and not vm_ref:
            problems.append(
                Problem(
                    str(self.table.path), number, self.column("vm_ref"),
                    "virtual machine without hypervisor/VM reference", self.table.unit,
                )
            )  # fmt: skip
        network = None
        if isinstance(site, Site) and isinstance(ip, tuple):
            value = ip[1]
            network = next((n for lo, hi, n in self.ranges[site.name] if lo < value < hi), None)
            if network is None:
                nets = ", ".join(f"{n.name} {n.cidr}" for n in site.networks)
                problems.append(
                    Problem(
                        str(self.table.path), number, self.column("ip"),
                        f"IP {ip[0]} is outside {site.label}'s networks ({nets}) "
                        "or is a network/broadcast address",
                        self.table.unit,
                    )
                )  # fmt: skip
        host: Host | None = None
        if not problems:
            assert isinstance(site, Site) and isinstance(service, tuple) and isinstance(ip, tuple)
            assert network is not None
            host = Host(
                hostname=str(hostname),
                asset_tag=str(asset_tag),
                kind=_KINDS[str(kind)],
                platform=_PLATFORMS[str(platform)],
                os=str(os_key),
                site=site.name,
                service=service[0],
                service_label=row[at["service"]].strip(),
                tier=service[1],
                location=row[at["location"]].strip(),
                ip=ip[0],
                mac=str(mac),
                bmc_address=bmc,
                vm_ref=vm_ref if platform == "virtual" else "",
                applications=apps if isinstance(apps, tuple) else (),
                serial=row[at["serial"]].strip(),
                network=network.name,
            )
        keys = (
            ("hostname", hostname), ("asset_tag", asset_tag), ("mac", mac),
            ("ip", ip[0] if isinstance(ip, tuple) else None), ("bmc_address", bmc),
        )  # fmt: skip
        return _Staged(number, cells, host, problems, {k: str(v) for k, v in keys if v})


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
    first: dict[str, dict[str, int]] = {k: {} for k in ("hostname", "asset_tag", "mac", "ip", "bmc_address")}
    clashes: dict[tuple[str, str], list[tuple[int, str]]] = {}  # only values used twice or more
    for i, row in enumerate(staged):
        for field, value in row.keys.items():
            if field == "asset_tag":
                value = value.casefold()
            j = first[field].setdefault(value, i)
            if j != i:
                where = clashes.get((field, value))
                if where is None:
                    clashes[(field, value)] = [(j, field), (i, field)]
                else:
                    where.append((i, field))
    # A BMC must not reuse any host's address (its own host's included).
    host_ips = first["ip"]
    for i, row in enumerate(staged):
        bmc = row.keys.get("bmc_address")
        if bmc:
            bmc_ip = bmc.removeprefix("https://").split(":")[0]
            owner = host_ips.get(bmc_ip)
            if owner is not None:
                clashes.setdefault(("ip", bmc_ip), [(owner, "ip")]).append((i, "bmc_address"))
    labels = {"hostname": "hostname", "asset_tag": "asset tag", "mac": "MAC", "ip": "IP"}
    labels["bmc_address"] = "BMC"
    for (kind, value), where in clashes.items():
        numbers = sorted({staged[i].number for i, _ in where})
        for i, field in where:
            row = staged[i]
            if len(numbers) == 1:
                if field != "bmc_address":
                    continue  # reported once, on the BMC column
                message = f"BMC address uses the host's own IP {value}"
            elif kind == "ip" and field == "bmc_address":
                message = f"BMC address IP {value} is also used on {_other_rows(numbers, row.number, unit)}"
            else:
                text = row.keys[field]
                message = (
                    f"duplicate {labels[kind]} {text if len(text) <= 40 else shown(text)} "
                    f"(also on {_other_rows(numbers, row.number, unit)})"
                )
            problem = Problem(file, row.number, column(field), message, unit)
            if problem not in row.problems:
                row.problems.append(problem)


def _other_rows(numbers: list[int], own: int, unit: str) -> str:
    """'row 3, 9 and 7,996 more': a few rows and a count, so a value shared by 8,000 rows
    makes 8,000 short messages, not 8,000 lists of 8,000 (time and memory stay linear)."""
    named: list[str] = []
    for n in numbers:
        if n != own:
            named.append(str(n))
            if len(named) == MAX_ROWS_NAMED:
                break
    more = len(numbers) - 1 - len(named)
    return f"{unit} {', '.join(named)}" + (f" and {more:,} more" if more > 0 else "")
