"""The module's PowerShell argument spec and its .py documentation (which the lab twin
validates against) must agree: same options, types, required flags and choices."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PS1 = ROOT / "plugins" / "modules" / "win_rebuild_baseline.ps1"
DOC = ROOT / "plugins" / "modules" / "win_rebuild_baseline.py"

_ENTRY = re.compile(r"^\s*(\w+) = @\{ (type = '(\w+)'.*) \}\s*$")


def ps1_options() -> dict[str, dict[str, Any]]:
    """Flattened `name` / `parent.name` -> {type, required, choices} from the $spec hashtable."""
    text = PS1.read_text(encoding="utf-8")
    spec = text[text.index("$spec = @{") : text.index("$module = [Ansible.Basic.AnsibleModule]")]
    out: dict[str, dict[str, Any]] = {}
    parent = ""
    for line in spec.splitlines():
        if m := re.match(r"^\s{8}(\w+) = @\{\s*$", line):  # a multi-line top-level option
            parent = m.group(1)
            out[parent] = {"type": None, "required": False, "choices": None}
            continue
        if parent and (m := re.match(r"^\s{12}(type|required|elements) = (.+)$", line)):
            if m.group(1) == "type":
                out[parent]["type"] = m.group(2).strip("'")
            elif m.group(1) == "required":
                out[parent]["required"] = m.group(2) == "$true"
            continue
        if m := _ENTRY.match(line):
            name, body, kind = m.group(1), m.group(2), m.group(3)
            indent = len(line) - len(line.lstrip())
            key = f"{parent}.{name}" if indent > 8 and parent else name
            choices = re.search(r"choices = @\(([^)]*)\)", body)
            out[key] = {
                "type": kind,
                "required": "required = $true" in body,
                "choices": [c.strip().strip("'") for c in choices.group(1).split(",")] if choices else None,
            }
    return out


def doc_options() -> dict[str, dict[str, Any]]:
    source = DOC.read_text(encoding="utf-8")
    doc = yaml.safe_load(source[source.index('r"""') + 4 : source.index('"""', source.index('r"""') + 4)])
    out: dict[str, dict[str, Any]] = {}

    def walk(options: dict[str, Any], prefix: str) -> None:
        for name, o in options.items():
            key = f"{prefix}{name}"
            out[key] = {
                "type": o.get("type", "str"),
                "required": bool(o.get("required")),
                "choices": [str(c) for c in o["choices"]] if "choices" in o else None,
            }
            if "options" in o:
                walk(o["options"], f"{key}.")

    walk(doc["options"], "")
    return out


def test_ps1_declares_check_mode_support() -> None:
    assert "supports_check_mode = $true" in PS1.read_text(encoding="utf-8")


def test_ps1_spec_equals_documentation() -> None:
    ps1, doc = ps1_options(), doc_options()
    assert set(ps1) == set(doc)
    for key in doc:
        assert ps1[key]["type"] == doc[key]["type"], key
        assert ps1[key]["required"] == doc[key]["required"], key
        assert (ps1[key]["choices"] or None) == (doc[key]["choices"] or None), key


def test_spec_reader_sees_a_difference() -> None:
    # the comparison can fail: a renamed option shows up
    ps1 = ps1_options()
    ps1["protected_account"] = ps1.pop("protected_accounts")
    assert set(ps1) != set(doc_options())
