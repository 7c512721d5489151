"""The asset register: read (CSV, XLSX, JSON), map columns, validate, report problems.

result = load_register(Path("inventories/example/register.csv"))
result.raise_for_problems()      # strict: RegisterError listing every problem
hosts = result.hosts             # list[rebuild.model.Host], retired/spare left out
"""

from __future__ import annotations

from pathlib import Path

from rebuild.datadir import PROJECT_ROOT
from rebuild.register.readers import RawTable, read_table
from rebuild.register.result import Problem, RegisterResult, Reject
from rebuild.register.validate import validate_table

EXAMPLE_REGISTER = PROJECT_ROOT / "inventories" / "example" / "register.csv"
SMALL_REGISTER = PROJECT_ROOT / "inventories" / "example" / "register-small.csv"

# Column headers of the bundled exports, in the order the CMDB writes them (French: register.csv,
# English: register-small.csv). Any name register_aliases.yml knows is read; these are what the
# example generator, the benches and the tests write.
EXPORT_HEADERS_FR = (
    "N° inventaire", "Nom", "Type", "Plateforme", "Système d'exploitation", "Site", "Service", "Local",
    "Adresse IP", "Adresse MAC", "Adresse BMC", "Référence VM", "Applications", "Statut", "N° de série",
)  # fmt: skip
EXPORT_HEADERS_EN = (
    "Asset tag", "Hostname", "Kind", "Platform", "OS", "Site", "Department", "Room",
    "IP address", "MAC address", "BMC address", "VM reference", "Applications", "Status", "Serial number",
)  # fmt: skip

__all__ = [
    "EXAMPLE_REGISTER",
    "EXPORT_HEADERS_EN",
    "EXPORT_HEADERS_FR",
    "SMALL_REGISTER",
    "Problem",
    "RawTable",
    "RegisterResult",
    "Reject",
    "load_register",
]


def load_register(path: Path, *, sheet: str | None = None, data_dir: Path | None = None) -> RegisterResult:
    """Read and validate a register. Unreadable files raise RegisterError; bad rows are collected
    in `.problems` (never raised here) so a caller can choose strict or --allow-errors."""
    return validate_table(read_table(Path(path), sheet=sheet), data_dir=data_dir)
