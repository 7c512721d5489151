"""ansible.windows.win_user and win_group_membership on the twin's local accounts."""

from __future__ import annotations

from typing import Any

from rebuild.lab.exec.cmdlets import machine_sid
from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.state import LocalUser, TwinState


def _user_result(state: TwinState, user: LocalUser) -> dict[str, Any]:
    groups = [g for g, members in state.groups.items() if user.name in members]
    host = state.hostname.upper()[:15]
    return {
        "name": user.name,
        "fullname": "",
        "description": user.description,
        "state": "present",
        "account_disabled": not user.enabled,
        "account_locked": False,
        "password_expired": False,
        "password_never_expires": False,
        "user_cannot_change_password": False,
        "path": f"WinNT://WORKGROUP/{host}/{user.name}",
        "sid": f"{machine_sid(state)}-{user.sid_suffix}",
        "groups": [{"name": g, "path": f"WinNT://WORKGROUP/{host}/{g}"} for g in groups],
    }


@module_twin("ansible.windows.win_user")
def win_user(ctx: ModuleContext) -> dict[str, Any]:
    p = ctx.params
    state = ctx.state()
    name = str(p["name"])
    key = next((k for k in state.users if k.lower() == name.lower()), None)
    if p["state"] == "query":
        if key is None:
            return {"changed": False, "name": name, "state": "absent"}
        return {"changed": False, **_user_result(state, state.users[key])}
    if p["state"] == "absent":
        if key is None:
            return {"changed": False, "name": name, "state": "absent"}
        if ctx.check_mode:
            return {"changed": True, "name": name, "state": "absent"}

        def drop(s: TwinState) -> None:
            s.users.pop(key, None)
            for members in s.groups.values():
                while key in members:
                    members.remove(key)

        ctx.update(drop)
        ctx.record("user_removed", user=key)
        return {"changed": True, "name": name, "state": "absent"}

    user = LocalUser(**vars(state.users[key])) if key else None
    changed = False
    if user is None:
        if not p.get("password"):
            # Windows refuses to create an account without a password when the policy requires one
            raise ModuleFailed(
                f"Failed to create user {name}: the password does not meet the password policy requirements "
                "(no password given)"
            )
        rid = max([u.sid_suffix for u in state.users.values()] + [1000]) + 1
        user = LocalUser(name=name, enabled=True, groups=[], password=str(p["password"]), sid_suffix=rid)
        changed = True
    elif (
        p.get("password") is not None and p["update_password"] == "always" and user.password != p["password"]
    ):
        user.password = str(p["password"])
        changed = True
    if p.get("description") is not None and user.description != p["description"]:
        user.description = str(p["description"])
        changed = True
    if p.get("account_disabled") is not None and user.enabled == bool(p["account_disabled"]):
        user.enabled = not bool(p["account_disabled"])
        changed = True
    if p.get("account_locked") is True:
        raise ModuleFailed("account_locked must be set to 'no' if provided")
    groups = {g: list(m) for g, m in state.groups.items()}
    if p.get("groups") is not None:
        wanted = []
        for g in p["groups"]:
            hit = next((x for x in groups if x.lower() == str(g).lower()), None)
            if hit is None:
                raise ModuleFailed(f"group '{g}' not found")
            wanted.append(hit)
        current = [g for g, m in groups.items() if user.name in m]
        action = p["groups_action"]
        add = [g for g in wanted if g not in current] if action in ("add", "replace") else []
        remove = [
            g
            for g in current
            if (action == "replace" and g not in wanted) or (action == "remove" and g in wanted)
        ]
        for g in add:
            groups[g].append(user.name)
        for g in remove:
            groups[g].remove(user.name)
        changed = changed or bool(add or remove)
    if changed and not ctx.check_mode:
        final = user

        def put(s: TwinState) -> None:
            s.users[final.name] = final
            s.groups = groups

        ctx.update(put)
        ctx.record("user_changed", user=user.name)
    shown_state = state if ctx.check_mode else ctx.state()
    shown = user if ctx.check_mode or not changed else shown_state.users[user.name]
    return {
        "changed": changed,
        **_user_result(shown_state if not ctx.check_mode else _with(state, user, groups), shown),
    }


def _with(state: TwinState, user: LocalUser, groups: dict[str, list[str]]) -> TwinState:
    preview = state.copy()
    preview.users[user.name] = user
    preview.groups = groups
    return preview


def _resolve(state: TwinState, member: str) -> str:
    """The name a member is stored under; fails as Convert-ToSID does for an unknown account."""
    host = state.hostname.upper()[:15]
    domain, sep, account = member.rpartition("\\")
    if sep and domain.upper() not in (host, ".", "BUILTIN", "NT AUTHORITY"):
        netbios = state.domain.split(".")[0].upper()
        if state.domain_joined and domain.upper() in (netbios, state.domain.upper()):
            return f"{netbios}\\{account}"
        raise ModuleFailed(
            f'account_name {member} is not a valid account, cannot get SID: Exception calling "Translate" '
            'with "1" argument(s): "Some or all identity references could not be translated."'
        )
    name = account if sep else member
    hit = next((u for u in list(state.users) + list(state.groups) if u.lower() == name.lower()), None)
    if hit is None:
        raise ModuleFailed(
            f'account_name {member} is not a valid account, cannot get SID: Exception calling "Translate" '
            'with "1" argument(s): "Some or all identity references could not be translated."'
        )
    return hit


@module_twin("ansible.windows.win_group_membership")
def win_group_membership(ctx: ModuleContext) -> dict[str, Any]:
    p = ctx.params
    state = ctx.state()
    group = next((g for g in state.groups if g.lower() == str(p["name"]).lower()), None)
    if group is None:
        raise ModuleFailed(f"Could not find local group {p['name']}")
    current = list(state.groups[group])
    wanted = [_resolve(state, str(m)) for m in p["members"]]
    low = [c.lower() for c in current]
    added: list[str] = []
    removed: list[str] = []
    if p["state"] in ("present", "pure"):
        added = [m for m in wanted if m.lower() not in low]
    if p["state"] == "absent":
        removed = [c for c in current if c.lower() in {w.lower() for w in wanted}]
    if p["state"] == "pure":
        removed = [c for c in current if c.lower() not in {w.lower() for w in wanted}]
    final = [c for c in current if c not in removed] + added
    changed = bool(added or removed)
    if changed and not ctx.check_mode:

        def put(s: TwinState) -> None:
            s.groups[group] = final

        ctx.update(put)
        ctx.record("group_membership_changed", group=group, added=added, removed=removed)
    host = state.hostname.upper()[:15]
    show = [m if "\\" in m else f"{host}\\{m}" for m in final]
    return {
        "changed": changed,
        "name": group,
        "added": [m if "\\" in m else f"{host}\\{m}" for m in added],
        "removed": [m if "\\" in m else f"{host}\\{m}" for m in removed],
        "members": show,
    }
