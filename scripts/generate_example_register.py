#!/usr/bin/env python3
"""Generate the bundled example registers of the (fictional) Groupe Hospitalier Ardenne-Luxembourg.

Deterministic (fixed seeds): rerunning gives byte-identical files, so the committed registers
can always be regenerated and diffed.

    python scripts/generate_example_register.py            # writes inventories/example/register.csv
                                                            #    and inventories/example/register-small.csv
    python scripts/generate_example_register.py --rows 100000 --out /tmp/big.csv   # bench size

The main register is what a Belgian hospital's asset tool exports: French headers, ';'
separated, UTF-8 with BOM (Excel's "CSV UTF-8"), service names written by many hands (case,
accents, a few Dutch/German/English labels), retired and spare assets still listed.
The small register uses English headers and ',' to exercise the other common export.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rebuild.csvsafe import SafeWriter
from rebuild.register import EXPORT_HEADERS_EN, EXPORT_HEADERS_FR

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "inventories" / "example"

FR_HEADERS = list(EXPORT_HEADERS_FR)
EN_HEADERS = list(EXPORT_HEADERS_EN)


@dataclass(frozen=True)
class SiteSpec:
    key: str
    label: str
    code: str
    octet: int  # second octet of the site's 10.x networks
    servers: int
    pcs: int


SITES = [
    SiteSpec("arlon", "Arlon", "ARL", 11, 80, 600),
    SiteSpec("marche", "Marche-en-Famenne", "MAR", 12, 50, 400),
    SiteSpec("libramont", "Libramont", "LIB", 13, 40, 300),
    SiteSpec("bastogne", "Bastogne", "BAS", 14, 30, 200),
]

# Core servers every site has: (name stem, service labels as written, physical?, applications)
CORE_SERVERS = [
    ("DC", ["Active Directory", "Annuaire", "AD"], True, ""),
    ("DC", ["Active Directory", "Contrôleur de domaine"], False, ""),
    ("DHCP", ["DNS/DHCP", "dns-dhcp", "Réseau"], False, ""),
    ("WSUS", ["WSUS", "Mises à jour"], False, ""),
    ("WDS", ["Déploiement", "WDS", "Imaging"], True, ""),
    ("OMNI", ["Omnipro", "Dossier patient", "DPI"], False, "omnipro-server"),
    ("URG", ["Urgences", "URGENCES"], False, ""),
    ("BLOC", ["Bloc opératoire", "Quartier opératoire"], False, ""),
    ("USI", ["Soins intensifs", "USI"], False, ""),
    ("MAT", ["Maternité", "Maternite"], False, ""),
    ("LIS", ["Laboratoire", "Labo"], True, "lis-server"),
    ("PACS", ["Radiologie", "Imagerie médicale"], True, "pacs-server"),
    ("PHA", ["Pharmacie"], False, ""),
    ("FS", ["Informatique", "IT"], True, ""),
    ("PRINT", ["Informatique"], False, ""),
]
ARLON_EXTRA = [  # the group's central services live in Arlon
    ("PKI", ["PKI", "Autorité de certification"], False, ""),
    ("PKI", ["PKI"], False, ""),
    ("OMNIDB", ["Omnipro", "Dossier patient informatisé"], True, "omnipro-server"),
    ("OMNIDB", ["Omnipro"], True, "omnipro-server"),
    ("PACS", ["Radiologie"], True, "pacs-server"),
]
APP_SERVER_SERVICES = [
    (["Administration", "Facturation", "Ressources humaines"], "ADM"),
    (["Logistique", "Stérilisation"], "LOG"),
    (["Service technique", "Technique"], "TEC"),
    (["Cuisine", "Restauration"], "CUI"),
    (["Informatique", "Helpdesk"], "APP"),
    (["Laboratoire", "Biologie clinique"], "LAB"),
    (["Radiologie"], "RAD"),
    (["Urgences", "SMUR"], "URG"),
    (["Hospitalisation", "Médecine interne"], "HOSP"),
]

# PC services: (code, labels as written (mostly French, some variants), room stem, weight, clinical?)
PC_SERVICES = [
    ("URG", ["Urgences", "URGENCES", "urgences", "Service des urgences", "Spoedgevallen", "Emergency"],
     "Urgences", 8, True),
    ("BLOC", ["Bloc opératoire", "Bloc operatoire", "BLOC OPÉRATOIRE", "Quartier opératoire", "OK"],
     "Bloc", 7, True),
    ("USI", ["Soins intensifs", "USI", "Soins Intensifs", "soins-intensifs", "Intensivstation"],
     "Soins intensifs", 6, True),
    ("MAT", ["Maternité", "MATERNITE", "Maternite", "Salle d'accouchement", "Kraamafdeling"], "Maternité", 5, True),  # noqa: E501
    ("LAB", ["Laboratoire", "Labo", "LABO", "Biologie clinique", "Labor"], "Laboratoire", 6, True),
    ("RAD", ["Radiologie", "Imagerie médicale", "Imagerie medicale", "RADIOLOGIE", "Medical imaging"],
     "Radiologie", 6, True),
    ("HOSP", ["Hospitalisation", "Médecine interne", "Chirurgie", "Pédiatrie", "Gériatrie", "Consultations"],
     "Unité", 24, True),
    ("PHA", ["Pharmacie", "PHARMACIE", "Apotheek"], "Pharmacie", 3, True),
    ("ADM", ["Administration", "Accueil", "Facturation", "Direction", "Ressources humaines"], "Bureau", 18, False),  # noqa: E501
    ("CUI", ["Cuisine", "Restauration"], "Cuisine", 2, False),
    ("LOG", ["Logistique", "Magasin", "Stérilisation"], "Magasin", 4, False),
    ("TEC", ["Service technique", "Technique"], "Atelier", 3, False),
    ("INF", ["Informatique", "Service informatique", "Helpdesk"], "Informatique", 4, False),
]  # fmt: skip

OUI_SERVER = ["14:18:77", "94:40:c9", "b8:83:03"]  # Dell, HPE
OUI_VM = "00:50:56"  # VMware
OUI_PC = ["d0:94:66", "3c:52:82", "54:e1:ad", "98:fa:9b"]  # Dell, HP, Lenovo
STATUS_IN = ["En service", "En service", "En service", "en service", "Actif", ""]


class Allocator:
    """Unique, deterministic identifiers across the whole register."""

    def __init__(self) -> None:
        self.mac_counter = 0x100
        self.asset = 100000
        self.vm = 1000

    def mac(self, oui: str) -> str:
        self.mac_counter += 1
        n = self.mac_counter
        return f"{oui}:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"

    def asset_tag(self) -> str:
        self.asset += 1
        return f"GHAL-{self.asset:06d}"

    def vm_ref(self) -> str:
        self.vm += 1
        return f"vm-{self.vm}"


def _ip(octet: int, third_base: int, n: int, per_third: int = 240) -> str:
    # Hosts from .10 to .249 of consecutive /24s: never a network or broadcast address.
    return f"10.{octet}.{third_base + n // per_third}.{10 + n % per_third}"


@dataclass(frozen=True)
class Layout:
    """Where addresses go. "standard" fits inventories/data/sites.yml; "wide" (benches) puts each
    network in its own 10.x.0.0/16 so 100,000 rows fit (the bench writes a matching sites.yml)."""

    wide: bool = False

    def _at(self, octet: int, shift: int, third: int, n: int) -> str:
        return _ip(octet + shift, 0, n) if self.wide else _ip(octet, third, n)

    def server(self, octet: int, n: int) -> str:
        return self._at(octet, 0, 0, n)

    def bmc(self, octet: int, n: int) -> str:
        return self._at(octet, 60, 2, n)

    def clinical(self, octet: int, n: int) -> str:
        return self._at(octet, 20, 16, n)

    def admin(self, octet: int, n: int) -> str:
        return self._at(octet, 40, 32, n)


STANDARD = Layout()


def _serial(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789BCDFGHJKLMNPQRSTVWXYZ") for _ in range(7))


def _server_rows(
    site: SiteSpec, rng: random.Random, alloc: Allocator, count: int, layout: Layout
) -> Iterator[list[str]]:
    templates = CORE_SERVERS + (ARLON_EXTRA if site.key == "arlon" else [])
    stems: dict[str, int] = {}
    for n in range(count):
        if n < len(templates):
            stem, labels, physical, apps = templates[n]
        else:
            labels, stem = APP_SERVER_SERVICES[(n - len(templates)) % len(APP_SERVER_SERVICES)]
            physical, apps = rng.random() < 0.25, ""
            stem = f"{stem}S" if stem in ("URG", "LAB", "RAD") else stem
        stems[stem] = stems.get(stem, 0) + 1
        name = f"{site.code}-{stem}{stems[stem]:02d}"
        os_label = rng.choices(
            ["Windows Server 2022 Standard", "Windows Server 2019 Standard", "Windows Server 2016 Standard",
             "Windows Server 2022 Datacenter"], weights=[55, 25, 10, 10])[0]  # fmt: skip
        if physical:
            mac, bmc, vm, platform, serial = (
                alloc.mac(rng.choice(OUI_SERVER)),
                layout.bmc(site.octet, n),
                "",
                "Physique",
                _serial(rng),
            )
        else:
            mac, bmc, vm, platform, serial = alloc.mac(OUI_VM), "", alloc.vm_ref(), "Virtuel", ""
        yield [
            alloc.asset_tag(), name, "Serveur", platform, os_label, site.label, rng.choice(labels),
            f"Salle serveurs {'A' if n % 2 == 0 else 'B'}", layout.server(site.octet, n), mac.upper() if n % 3 == 0 else mac,  # noqa: E501
            bmc, vm, apps, rng.choice(STATUS_IN), serial,
        ]  # fmt: skip


def _pc_rows(
    site: SiteSpec, rng: random.Random, alloc: Allocator, count: int, layout: Layout
) -> Iterator[list[str]]:
    weights = [s[3] for s in PC_SERVICES]
    counters: dict[str, int] = {}
    clinical_n = admin_n = 0
    for _ in range(count):
        code, labels, room, _, clinical = rng.choices(PC_SERVICES, weights=weights)[0]
        counters[code] = counters.get(code, 0) + 1
        name = f"{site.code}-{code}-{counters[code]:04d}"
        if clinical:
            ip = layout.clinical(site.octet, clinical_n)
            clinical_n += 1
        else:
            ip = layout.admin(site.octet, admin_n)
            admin_n += 1
        virtual = not clinical and rng.random() < 0.05  # a few VDI desktops in the offices
        os_label = rng.choices(["Windows 11 Enterprise 23H2", "Windows 10 Enterprise 22H2", "Win11"],
                               weights=[60, 30, 10])[0]  # fmt: skip
        yield [
            alloc.asset_tag(), name, rng.choice(["PC", "Poste de travail", "PC", "Portable"]),
            "Virtuel" if virtual else "Physique", os_label, site.label, rng.choice(labels),
            f"{room} {rng.randint(1, 40)}", ip,
            alloc.mac(OUI_VM if virtual else rng.choice(OUI_PC)).replace(":", "-" if rng.random() < 0.3 else ":"),  # noqa: E501
            "", alloc.vm_ref() if virtual else "", "", rng.choice(STATUS_IN), "" if virtual else _serial(rng),
        ]  # fmt: skip


def _left_out_rows(site: SiteSpec, rng: random.Random, alloc: Allocator, count: int) -> Iterator[list[str]]:
    # Retired and spare machines stay in real registers, often with stale data (old OS, no IP).
    for n in range(count):
        status = rng.choice(["Réformé", "Retiré", "Hors service", "Stock", "Réserve"])
        yield [
            alloc.asset_tag(), f"{site.code}-OLD-{n + 1:04d}", "PC", "Physique", "Windows 7 Professionnel",
            site.label, rng.choice(["Urgences", "Administration", "Ancien service"]), "Stock informatique",
            "", alloc.mac(rng.choice(OUI_PC)), "", "", "", status, _serial(rng),
        ]  # fmt: skip


def full_register(seed: int = 20260101, scale: float = 1.0, layout: Layout = STANDARD) -> list[list[str]]:
    rng = random.Random(seed)
    alloc = Allocator()
    rows: list[list[str]] = []
    for site in SITES:
        servers = max(1, round(site.servers * scale))
        pcs = max(1, round(site.pcs * scale))
        rows.extend(_server_rows(site, rng, alloc, servers, layout))
        rows.extend(_pc_rows(site, rng, alloc, pcs, layout))
        rows.extend(_left_out_rows(site, rng, alloc, max(1, round(pcs * 0.02))))
    return rows


def small_register(seed: int = 7) -> list[list[str]]:
    """Tens of hosts on two sites, every tier, physical and virtual servers and PCs."""
    rng = random.Random(seed)
    alloc = Allocator()
    rows: list[list[str]] = []
    plan = {
        "arlon": [
            ("DC01", "Server", "Physical", "Active Directory"), ("DC02", "Server", "Virtual", "Directory"),
            ("DHCP01", "Server", "Virtual", "DNS/DHCP"), ("PKI01", "Server", "Virtual", "PKI"),
            ("WSUS01", "Server", "Virtual", "WSUS"), ("WDS01", "Server", "Physical", "Deployment"),
            ("OMNI01", "Server", "Virtual", "Omnipro"), ("OMNIDB01", "Server", "Physical", "Omnipro"),
            ("URG01", "Server", "Virtual", "Emergency"), ("URG-0001", "PC", "Physical", "Urgences"),
            ("URG-0002", "PC", "Physical", "Spoedgevallen"), ("URG-0003", "PC", "Physical", "Notaufnahme"),
            ("BLOC-0001", "PC", "Physical", "Bloc opératoire"), ("BLOC-0002", "PC", "Physical", "OK"),
            ("USI-0001", "PC", "Physical", "Soins intensifs"), ("USI-0002", "PC", "Physical", "Intensieve zorg"),  # noqa: E501
            ("MAT-0001", "PC", "Physical", "Maternité"), ("MAT-0002", "PC", "Physical", "Kraamafdeling"),
            ("LIS01", "Server", "Physical", "Laboratory"), ("LAB-0001", "PC", "Physical", "Labo"),
            ("PACS01", "Server", "Physical", "Radiology"), ("RAD-0001", "PC", "Physical", "Imagerie médicale"),  # noqa: E501
            ("HOSP-0001", "PC", "Physical", "Ward"), ("PHA-0001", "PC", "Physical", "Pharmacy"),
            ("ADM-0001", "PC", "Physical", "Administration"), ("ADM-0002", "PC", "Virtual", "Billing"),
            ("INF-0001", "PC", "Physical", "IT"),
        ],
        "bastogne": [
            ("DC01", "Server", "Physical", "Active Directory"), ("DHCP01", "Server", "Virtual", "DNS/DHCP"),
            ("OMNI01", "Server", "Virtual", "Omnipro"), ("URG-0001", "PC", "Physical", "Emergency"),
            ("URG-0002", "PC", "Physical", "URGENCES"), ("BLOC-0001", "PC", "Physical", "Operating room"),
            ("USI-0001", "PC", "Physical", "ICU"), ("MAT-0001", "PC", "Physical", "Maternity"),
            ("LAB-0001", "PC", "Physical", "Lab"), ("RAD-0001", "PC", "Physical", "Radiologie"),
            ("ADM-0001", "PC", "Physical", "Reception"),
        ],
    }  # fmt: skip
    rooms = {"Urgences": "Urgences", "Bloc": "Bloc", "Soins": "Soins intensifs", "Mater": "Maternité"}
    for site in (s for s in SITES if s.key in plan):
        servers = pcs = 0
        for stem, kind, platform, service in plan[site.key]:
            physical = platform == "Physical"
            if kind == "Server":
                ip, bmc = _ip(site.octet, 0, servers), (_ip(site.octet, 2, servers) if physical else "")
                servers += 1
                os_label = "Windows Server 2022" if servers % 3 else "Windows Server 2019"
            else:
                ip, bmc = _ip(site.octet, 16, pcs), ""
                pcs += 1
                os_label = "Windows 11 23H2" if pcs % 4 else "Windows 10 22H2"
            room = next((r for k, r in rooms.items() if service.startswith(k)), "Office")
            rows.append([
                alloc.asset_tag(), f"{site.code}-{stem}", kind, platform, os_label, site.label, service,
                f"{room} {pcs or servers}", ip,
                alloc.mac(rng.choice(OUI_SERVER if kind == "Server" else OUI_PC) if physical else OUI_VM),
                bmc, "" if physical else alloc.vm_ref(), "", "In service", _serial(rng) if physical else "",
            ])  # fmt: skip
    rows.append([alloc.asset_tag(), "ARL-OLD-0001", "PC", "Physical", "Windows 7", "Arlon", "Emergency",
                 "Storage", "", "", "", "", "", "Retired", _serial(rng)])  # fmt: skip
    rows.append([alloc.asset_tag(), "BAS-SPARE-0001", "PC", "Physical", "Windows 11", "Bastogne", "Emergency",
                 "Storage", "", "", "", "", "", "Spare", _serial(rng)])  # fmt: skip
    return rows


def render(headers: list[str], rows: list[list[str]], delimiter: str) -> str:
    buffer = io.StringIO()
    writer = SafeWriter(buffer, delimiter=delimiter, lineterminator="\r\n")  # as Excel writes it
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, help="approximate number of rows, wide address layout (for benches)"
    )
    parser.add_argument("--out", type=Path, help="output file (with --rows); default: the bundled registers")
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args(argv)
    if args.rows:
        scale = args.rows / sum(s.servers + s.pcs * 1.02 for s in SITES)
        out = args.out or Path(f"register-{args.rows}.csv")
        rows = full_register(args.seed, scale, Layout(wide=True))
        out.write_text(render(FR_HEADERS, rows, ";"), encoding="utf-8-sig")
        print(f"wrote {out}", file=sys.stderr)
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "register.csv").write_text(
        render(FR_HEADERS, full_register(args.seed), ";"), encoding="utf-8-sig"
    )
    (OUT_DIR / "register-small.csv").write_text(render(EN_HEADERS, small_register(), ","), encoding="utf-8")
    print(f"wrote {OUT_DIR / 'register.csv'} and {OUT_DIR / 'register-small.csv'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
