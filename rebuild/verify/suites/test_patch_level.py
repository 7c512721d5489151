"""The host is at least at the patch catalogue's minimum (condition `patch_level`)."""

# mypy: disable-error-code="no-untyped-def"
# (pytest test functions: fixtures are typed by name in rebuild/verify/plugin.py)

from __future__ import annotations

from rebuild.verify.windows import WindowsReads


def test_patch_level(win: WindowsReads, expect):
    level = win.patch_level()
    build, ubr = str(level.get("CurrentBuildNumber", "")), level.get("UBR")
    minimum = f"{expect.patch_build}.{expect.patch_minimum_ubr}"
    assert isinstance(ubr, int), f"below patch level: no UBR readable (build {build!r}, UBR {ubr!r})"
    assert build == expect.patch_build, f"below patch level: OS build {build}, catalogue expects {minimum}"
    assert ubr >= expect.patch_minimum_ubr, (
        f"below patch level: OS build {build}.{ubr}, the patch catalogue's minimum is {minimum}"
    )
