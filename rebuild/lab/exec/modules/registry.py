"""ansible.windows.win_reg_stat and win_regedit on the twin's registry (keys `HKLM:\\PATH`).

Value types are kept as Windows shows them through the twin's data: int -> REG_DWORD (REG_QWORD
above 32 bits), str -> REG_SZ, list of str -> REG_MULTI_SZ, list of int -> REG_BINARY.
A key's default value is stored under the name "(default)".
"""

from __future__ import annotations

import re
from typing import Any

from rebuild.lab.exec.cmdlets import reg_canonical, reg_exists, reg_find, reg_subkeys, registry_view
from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.state import TwinState

DEFAULT = "(default)"


def reg_type(value: Any) -> str:
    if isinstance(value, bool):
        return "REG_DWORD"
    if isinstance(value, int):
        return "REG_QWORD" if value > 0xFFFFFFFF or value < 0 else "REG_DWORD"
    if isinstance(value, list):
        return "REG_BINARY" if value and all(isinstance(x, int) for x in value) else "REG_MULTI_SZ"
    if value is None:
        return "REG_NONE"
    return "REG_SZ"


def _stat_value(value: Any) -> dict[str, Any]:
    return {"raw_value": value, "value": value, "type": reg_type(value)}


@module_twin("ansible.windows.win_reg_stat")
def win_reg_stat(ctx: ModuleContext) -> dict[str, Any]:
    raw = str(ctx.params["path"])
    key = reg_canonical(raw)
    if key is None:
        raise ModuleFailed(
            f"path: {raw} is not a valid registry path, see module documentation for examples."
        )
    view = registry_view(ctx.state())
    name = ctx.params.get("name")
    if not reg_exists(view, key):
        return {"changed": False, "exists": False}
    values = view.get(reg_find(view, key) or "", {})
    if name is None:
        return {
            "changed": False,
            "exists": True,
            "properties": {("" if n == DEFAULT else n): _stat_value(v) for n, v in values.items()},
            "sub_keys": [k.rsplit("\\", 1)[-1] for k in reg_subkeys(view, key)],
        }
    wanted = DEFAULT if name == "" else str(name)
    hit = next((n for n in values if n.lower() == wanted.lower()), None)
    if hit is None:
        return {"changed": False, "exists": False}
    return {"changed": False, "exists": True, **_stat_value(values[hit])}


def _convert(data: Any, kind: str) -> Any:
    """win_regedit's data conversion for each type."""
    if kind in ("dword", "qword"):
        if data is None:
            return 0
        if isinstance(data, str):
            text = data.strip()
            try:
                value = int(text, 16) if text.lower().startswith("0x") else int(float(text))
                if not text.lower().startswith("0x") and float(text) != int(float(text)):
                    raise ModuleFailed(
                        f"data '{data}' cannot be a decimal or float value with a remainder "
                        f"when type is {kind}"
                    )
            except ValueError:
                raise ModuleFailed(f"data '{data}' is not a valid integer for type {kind}") from None
        elif isinstance(data, float):
            if not data.is_integer():
                raise ModuleFailed(
                    f"data '{data}' cannot be a decimal or float value with a remainder when type is {kind}"
                )
            value = int(data)
        else:
            value = int(data)
        limit = 0xFFFFFFFF if kind == "dword" else 0xFFFFFFFFFFFFFFFF
        if value > limit:
            raise ModuleFailed(f"data cannot be larger than 0x{limit:x} when type is {kind}")
        return value
    if kind == "multistring":
        if data is None:
            return []
        return [str(x) for x in (data if isinstance(data, list) else [data])]
    if kind in ("binary", "none"):
        if data is None:
            return []
        if isinstance(data, str):
            text = re.sub(r"^hex:", "", data.strip(), flags=re.I)
            try:
                return [int(b, 16) for b in text.split(",") if b.strip()]
            except ValueError:
                raise ModuleFailed(f"data '{data}' is not a valid binary value") from None
        return [int(x) for x in data]
    return "" if data is None else str(data)


@module_twin("ansible.windows.win_regedit")
def win_regedit(ctx: ModuleContext) -> dict[str, Any]:
    p = ctx.params
    raw = str(p["path"])
    if p.get("hive"):
        raise ModuleFailed("the rebuild lab (a simulation) does not simulate loading registry hives (hive)")
    key = reg_canonical(raw)
    if key is None:
        raise ModuleFailed(
            f"path: {raw} is not a valid powershell path, see module documentation for examples."
        )
    kind = str(p.get("type") or "string").lower()
    name = p.get("name")
    value_name = DEFAULT if name in (None, "") else str(name)
    result: dict[str, Any] = {"changed": False, "data_changed": False, "data_type_changed": False}
    state = ctx.state()
    stored = next((k for k in state.registry if k.lower() == key.lower()), None)
    exists = reg_exists(state.registry, key)

    if p["state"] == "absent":
        if name is None and p.get("delete_key", True):
            if not exists:
                return result
            victims = [
                k
                for k in state.registry
                if k.lower() == key.lower() or k.lower().startswith(key.lower() + "\\")
            ]
            result["changed"] = True
            if not ctx.check_mode:

                def remove_keys(s: TwinState) -> None:
                    for k in victims:
                        s.registry.pop(k, None)

                ctx.update(remove_keys)
            return result
        if stored is None:
            return result
        hit = next((n for n in state.registry[stored] if n.lower() == value_name.lower()), None)
        if hit is None:
            return result
        result["changed"] = True
        if not ctx.check_mode:

            def remove_value(s: TwinState) -> None:
                s.registry[key_name].pop(value, None)

            key_name, value = stored, hit
            ctx.update(remove_value)
        return result

    data = _convert(p.get("data"), kind)
    if kind == "dword" and isinstance(data, int):
        pass
    if stored is None:
        result["changed"] = True
        if name is not None or p.get("data") is not None:
            result["data_changed"] = True
        if not ctx.check_mode:

            def create(s: TwinState) -> None:
                s.registry[key] = (
                    {value_name: data} if (name is not None or p.get("data") is not None) else {}
                )

            ctx.update(create)
        return result
    if name is None and p.get("data") is None:
        return result  # key exists: nothing to set
    current = state.registry[stored]
    hit = next((n for n in current if n.lower() == value_name.lower()), None)
    if hit is not None:
        old = current[hit]
        type_changed = reg_type(old) != reg_type(data) and not (kind == "qword" and isinstance(old, int))
        if old == data and not type_changed:
            return result
        result.update(changed=True, data_changed=old != data, data_type_changed=type_changed)
    else:
        result.update(changed=True, data_changed=True)
    if ctx.diff_mode:
        result["diff"] = {
            "before": {key: {value_name: current.get(hit) if hit else None}},
            "after": {key: {value_name: data}},
        }
    if not ctx.check_mode:

        def put(s: TwinState) -> None:
            s.registry[stored].pop(hit, None) if hit and hit != value_name else None
            s.registry[stored][value_name] = data

        ctx.update(put)
    return result
