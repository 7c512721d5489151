"""The patch catalogue: parsing, and the stale image refused at plan time naming it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild.cli import main
from rebuild.errors import ConfigError
from rebuild.patch import catalogue_images, load_patch_catalogue, parse_patch_catalogue, stale_images
from rebuild.register import SMALL_REGISTER
from rebuild.tiers import PROJECT_ROOT

DATA = PROJECT_ROOT / "inventories" / "data"


def _data_copy(tmp_path: Path, built: dict[str, object]) -> Path:
    """The project data with other build days for some images (OS key -> day, None: no day)."""
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    raw = yaml.safe_load((data / "images.yml").read_text())
    for os_key, day in built.items():
        if day is None:
            raw["images"][os_key].pop("built")
        else:
            raw["images"][os_key]["built"] = day
    (data / "images.yml").write_text(yaml.safe_dump(raw))
    return data


def test_bundled_catalogue_covers_every_image() -> None:
    catalogue = load_patch_catalogue(DATA / "patch_levels.yml")
    images = yaml.safe_load((DATA / "images.yml").read_text())["images"]
    assert set(catalogue.levels) == set(images)
    assert all(isinstance(e["built"], str) for e in images.values())  # every image has its build day
    assert catalogue.for_os("windows-server-2022").minimum == "20348.2849"


def test_stale_image_named_with_its_date_and_the_limit() -> None:
    catalogue = load_patch_catalogue(DATA / "patch_levels.yml")
    built = catalogue_images(DATA / "images.yml")["windows-server-2022"].built
    assert built is not None
    limit = catalogue.for_os("windows-server-2022").max_image_age_days
    images = DATA / "images.yml"
    fresh = stale_images(["windows-server-2022"], today=built + dt.timedelta(days=limit), images_file=images)
    assert fresh == []
    stale = stale_images(
        ["windows-server-2022"], today=built + dt.timedelta(days=limit + 1), images_file=images
    )
    assert stale == [
        f"image ghal-ws2022-std-2026.11 (windows-server-2022) was built {built.isoformat()}, "
        f"{limit + 1} days ago; the patch catalogue allows {limit} days"
    ]


def test_plan_refuses_a_stale_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REBUILD_DATA_DIR", str(_data_copy(tmp_path, {"windows-11-23h2": "2020-01-15"})))
    assert main(["plan", "site", "bastogne", "--register", str(SMALL_REGISTER)]) == 2
    err = capsys.readouterr().err
    assert "image ghal-w11-23h2-ent-2026.11 (windows-11-23h2) was built 2020-01-15" in err
    assert "allows 120 days" in err and "Traceback" not in err


def test_plan_refuses_an_image_of_unknown_age(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REBUILD_DATA_DIR", str(_data_copy(tmp_path, {"windows-server-2022": None})))
    assert main(["plan", "site", "bastogne", "--register", str(SMALL_REGISTER)]) == 2
    assert "image ghal-ws2022-std-2026.11 (windows-server-2022) has no build date" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"build": "2034", "minimum_ubr": 1, "source": "offline"}, "is not a Windows build number"),
        ({"build": "20348", "minimum_ubr": -1, "source": "offline"}, "minimum_ubr must be a whole number"),
        ({"build": "20348", "minimum_ubr": 1, "source": "internet"}, "source 'internet' must be one of"),
        ({"build": "20348", "minimum_ubr": 1, "source": "wsus"}, "source wsus needs wsus_server"),
        (
            {
                "build": "20348",
                "minimum_ubr": 9,
                "source": "offline",
                "packages": [{"kb": "KB5070312", "file": "u.msu", "sha256": "a" * 64, "ubr": 5}],
            },
            "the packages reach UBR 5, below minimum_ubr 9",
        ),
        (
            {
                "build": "20348",
                "minimum_ubr": 1,
                "source": "offline",
                "packages": [{"kb": "KB5070312", "file": "../u.msu", "sha256": "a" * 64, "ubr": 5}],
            },
            "must be a relative .msu or .cab path",
        ),
    ],
)
def test_bad_entry_named(entry: dict[str, object], message: str) -> None:
    raw = {
        "max_image_age_days": 30,
        "repository": "https://updates.example",
        "os": {"windows-server-2022": entry},
    }
    with pytest.raises(ConfigError, match=r"patch_levels\.yml: os windows-server-2022") as info:
        parse_patch_catalogue(raw, Path("patch_levels.yml"))
    assert message in str(info.value)


def test_packages_need_an_https_repository() -> None:
    entry = {
        "build": "20348",
        "minimum_ubr": 5,
        "source": "offline",
        "packages": [{"kb": "KB5070312", "file": "u.msu", "sha256": "a" * 64, "ubr": 5}],
    }
    with pytest.raises(ConfigError, match="packages need the catalogue's repository"):
        parse_patch_catalogue({"max_image_age_days": 3, "os": {"windows-server-2022": entry}}, Path("p.yml"))
    with pytest.raises(ConfigError, match="repository 'file:///srv/u' must be an https:// URL"):
        raw = {"max_image_age_days": 3, "repository": "file:///srv/u", "os": {"windows-server-2022": entry}}
        parse_patch_catalogue(raw, Path("p.yml"))


def test_missing_packages_in_order() -> None:
    raw = {
        "max_image_age_days": 30,
        "repository": "https://updates.example",
        "os": {
            "windows-server-2022": {
                "build": "20348",
                "minimum_ubr": 20,
                "source": "offline",
                "packages": [
                    {"kb": "KB5000001", "file": "a.msu", "sha256": "a" * 64, "ubr": 10},
                    {"kb": "KB5000002", "file": "b.msu", "sha256": "b" * 64, "ubr": 20},
                ],
            }
        },
    }
    level = parse_patch_catalogue(raw, Path("p.yml")).for_os("windows-server-2022")
    assert [p.kb for p in level.missing_packages(10)] == ["KB5000002"]
    assert [p.kb for p in level.missing_packages(3)] == ["KB5000001", "KB5000002"]


def test_a_host_reimaged_from_another_catalogue_is_checked_against_its_build_days(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The build day lives with the image: a catalogue a host's inventory names (a site's own, the
    lab's) is the one whose days count, not the project's."""
    from rebuild.inventory import load_inventory_hosts

    assert main(["inventory", "build", str(SMALL_REGISTER), "--out", str(tmp_path)]) == 0
    inventory = tmp_path / "arlon.yml"
    host = next(h for h in load_inventory_hosts(inventory) if h.os == "windows-11-23h2")
    catalogue = yaml.safe_load((DATA / "images.yml").read_text())
    catalogue["images"]["windows-11-23h2"]["built"] = "2018-06-01"
    other = tmp_path / "other-images.yml"
    other.write_text(yaml.safe_dump(catalogue))
    raw = yaml.safe_load(inventory.read_text())
    found = [g["hosts"] for g in _groups(raw["all"]) if host.hostname in (g.get("hosts") or {})]
    for hosts in found:
        hosts[host.hostname] = {**(hosts[host.hostname] or {}), "rebuild_image_catalogue": str(other)}
    assert found
    inventory.write_text(yaml.safe_dump(raw))
    assert main(["plan", "site", "arlon", "--inventory", str(inventory)]) == 2
    err = capsys.readouterr().err
    assert "image ghal-w11-23h2-ent-2026.11 (windows-11-23h2) was built 2018-06-01" in err, err


def _groups(group: dict[str, Any]) -> list[dict[str, Any]]:
    """A YAML inventory group and every group under it."""
    children = group.get("children") or {}
    return [group] + [g for child in children.values() for g in _groups(child or {})]


def test_the_lab_catalogue_dates_its_images_the_day_the_lab_made_them(tmp_path: Path) -> None:
    from rebuild.lab.images import catalogue_path, ensure_repository

    images = ensure_repository(tmp_path)
    written = yaml.safe_load(catalogue_path(tmp_path).read_text())["images"]
    assert {e["built"] for e in written.values()} == {dt.date.today().isoformat()}
    # A lab kept for months: its image files are that old, and so is the catalogue's day.
    old = dt.datetime(2026, 1, 5).timestamp()
    for image in images.values():
        os.utime(image.path, (old, old))
    ensure_repository(tmp_path)
    written = yaml.safe_load(catalogue_path(tmp_path).read_text())["images"]
    assert {e["built"] for e in written.values()} == {"2026-01-05"}
