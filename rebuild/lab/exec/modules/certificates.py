"""ansible.windows.win_certificate_store: import (from a file on the twin) or remove a certificate.

An imported certificate is kept where Windows keeps it, as a registry key
`HKLM:\\SOFTWARE\\Microsoft\\SystemCertificates\\<store>\\Certificates\\<THUMBPRINT>` (the same
convention the twin host uses when win_rebuild_apps.ps1 imports one through the evaluator).
The thumbprint is the SHA-1 of the DER bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.exec.winenv import find_path, is_file
from rebuild.lab.state import TwinState

KEY = "HKLM:\\SOFTWARE\\Microsoft\\SystemCertificates\\{store}\\Certificates\\{thumb}"


def _der(content: str) -> bytes:
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", content, re.S)
    try:
        return base64.b64decode("".join((m.group(1) if m else content).split()), validate=True)
    except (binascii.Error, ValueError):
        raise ModuleFailed("Failed to load cert from file: Cannot find the requested object.") from None


@module_twin("ansible.windows.win_certificate_store")
def win_certificate_store(ctx: ModuleContext) -> dict[str, Any]:
    p = ctx.params
    if str(p["store_location"]).lower() != "localmachine" or p["store_type"] != "system":
        raise ModuleFailed(
            "the rebuild lab (a simulation) only simulates the LocalMachine system certificate stores"
        )
    store = str(p["store_name"])
    state = ctx.state()
    if p["state"] == "exported":
        raise ModuleFailed("the rebuild lab (a simulation) does not simulate exporting certificates")
    if p["state"] == "present":
        path = p.get("path")
        if not path:
            raise ModuleFailed("state is present but all of the following are missing: path")
        if p.get("file_type") == "pkcs12":
            raise ModuleFailed("the rebuild lab (a simulation) does not simulate PKCS#12 import")
        if not is_file(state, str(path)):
            raise ModuleFailed(f"file at path '{path}' either does not exist or is not a file")
        thumb = (
            hashlib.sha1(_der(state.files[find_path(state.files, str(path)) or str(path)]))
            .hexdigest()
            .upper()
        )
        key = KEY.format(store=store, thumb=thumb)
        present = any(k.lower() == key.lower() for k in state.registry)
        if not present and not ctx.check_mode:

            def add(s: TwinState) -> None:
                s.registry[key] = {"Blob": "SIMULATED certificate blob", "Thumbprint": thumb}

            ctx.update(add)
            ctx.record("certificate_imported", store=store, thumbprint=thumb)
        return {"changed": not present, "thumbprints": [thumb]}
    thumb = str(p.get("thumbprint") or "").upper()
    if not thumb:
        raise ModuleFailed("state is absent but any of the following are missing: path, thumbprint")
    key = KEY.format(store=store, thumb=thumb)
    stored = next((k for k in state.registry if k.lower() == key.lower()), None)
    if stored and not ctx.check_mode:

        def remove(s: TwinState) -> None:
            s.registry.pop(stored, None)

        ctx.update(remove)
    return {"changed": stored is not None, "thumbprints": [thumb] if stored else []}
