"""Every EDR agent the host is deployed with is running and onboarded (condition `edr_onboarded`).

The EDR catalogue (inventories/data/edr.yml) names, per agent, its sensor service and the registry
value it writes once onboarded to its tenant: an agent installed but not onboarded reports nothing.
"""

# mypy: disable-error-code="no-untyped-def"
# (pytest test functions: fixtures are typed by name in rebuild/verify/plugin.py)

from __future__ import annotations

from rebuild.verify.windows import WindowsReads

RUNNING = (4, "Running")  # ServiceControllerStatus as ConvertTo-Json writes it, or its name


def test_edr_onboarded(win: WindowsReads, expect):
    problems: list[str] = []
    services = {str(s.get("Name", "")).lower(): s for s in win.services()}
    for edr in expect.edr:
        service = services.get(edr["service"].lower())
        if service is None or service.get("Status") not in RUNNING:
            state = "absent" if service is None else f"status {service.get('Status')}"
            problems.append(f"{edr['application']}: sensor service {edr['service']} not running ({state})")
        values = win.registry_key(edr["registry_key"]) or {}
        found = values.get(edr["registry_value"])
        if str(found) != str(edr["onboarded"]):
            problems.append(
                f"{edr['application']}: not onboarded ({edr['registry_key']} {edr['registry_value']} = "
                f"{found!r}, onboarded is {edr['onboarded']!r})"
            )
    assert not problems, "EDR not onboarded: " + "; ".join(problems)
