"""microsoft.ad.object_info on a domain controller twin: reads of the lab's directory (SIMULATION).

Only what the tier-0 gates read is simulated: `ldap_filter` of the form `(sAMAccountName=NAME)`
and the properties `sAMAccountName`, `msDS-KeyVersionNumber`, `pwdLastSet` (rebuild/lab/directory.py).
Anything else fails saying the lab does not simulate it. The module runs the ActiveDirectory
cmdlets, which exist only where AD DS tools are installed: here, the twins of the directory
service. Over NTLM the connection user has no credential for the cmdlets' second hop, so
without `domain_username`/`domain_password` (or a delegated credential) the read fails, as the
module's documentation says; the credential given must be the lab domain's join account.
Returned as the module does: `objects`, one dict per object found, pwdLastSet as the raw
Int64 FILETIME the AD cmdlets give for it, plus DistinguishedName, Name, ObjectClass, ObjectGUID.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from rebuild.lab import directory
from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.exec.modules.domain import _dc_credential, lab_domain

_FILTER = re.compile(r"^\(sAMAccountName=([A-Za-z0-9._$-]+)\)$")
_PROPERTIES = {"samaccountname", "msds-keyversionnumber", "pwdlastset"}


@module_twin("microsoft.ad.object_info")
def object_info(ctx: ModuleContext) -> dict[str, Any]:
    p = ctx.params
    if ctx.twin.service != "directory":
        raise ModuleFailed(
            "The term 'Get-ADObject' is not recognized as the name of a cmdlet (the rebuild lab simulates "
            "the ActiveDirectory module on the directory service's twins only)"
        )
    if p.get("filter") or p.get("identity") or p.get("search_base") or p.get("search_scope"):
        raise ModuleFailed(
            "the rebuild lab (a simulation) does not simulate object_info with filter, identity "
            "or search options"
        )
    match = _FILTER.match(str(p.get("ldap_filter") or ""))
    if not match:
        raise ModuleFailed(
            f"the rebuild lab (a simulation) does not simulate the LDAP filter {p.get('ldap_filter')!r} "
            "(only (sAMAccountName=NAME))"
        )
    wanted = [str(x) for x in p.get("properties") or []]
    unknown = [x for x in wanted if x.lower() not in _PROPERTIES]
    if unknown:
        raise ModuleFailed(f"the rebuild lab (a simulation) does not simulate the properties {unknown}")
    user, password = p.get("domain_username"), p.get("domain_password")
    if not user and not ctx.delegated_credentials:
        raise ModuleFailed(
            "Failed to contact the Active Directory Web Services: the connection user has no credential "
            "for the second hop (give domain_username/domain_password, or use Kerberos delegation/CredSSP)"
        )
    lab_user, lab_password = _dc_credential(ctx)
    short = str(user).split("\\")[-1].split("@")[0].lower()
    if not lab_user or short != str(lab_user).split("\\")[-1].lower() or password != lab_password:
        raise ModuleFailed("The server has rejected the client credentials.")
    state = directory.load(ctx.lab.config.lab_dir)
    attrs = directory.account(
        state, match.group(1), reset_once=ctx.lab.fault(ctx.twin.name, "krbtgt_reset_once") is not None
    )
    if attrs is None:
        return {"changed": False, "objects": []}
    base = ",".join(f"DC={part}" for part in lab_domain().split("."))
    name = str(attrs["sAMAccountName"])
    obj: dict[str, Any] = {
        "DistinguishedName": f"CN={name},CN=Users,{base}",
        "Name": name,
        "ObjectClass": "user",
        "ObjectGUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{base}")),
    }
    for prop in wanted:
        key = next((k for k in attrs if k.lower() == prop.lower()), None)
        obj[key or prop] = attrs.get(key) if key else None
    return {"changed": False, "objects": [obj]}
