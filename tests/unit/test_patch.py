"""The patch catalogue: parsing, and the stale image refused at plan time naming it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from rebuild.cli import main
from rebuild.errors import ConfigError
from rebuild.patch import load_patch_catalogue, parse_patch_catalogue, stale_images
from rebuild.register import SMALL_REGISTER
from rebuild.tiers import PROJECT_ROOT

DATA = PROJECT_ROOT / "inventories" / "data"


def _data_copy(tmp_path: Path, change: dict[str, object]) -> Path:
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    raw = yaml.safe_load((data / "patch_levels.yml").read_text())
    raw.update(change)
    (data / "patch_levels.yml").write_text(yaml.safe_dump(raw))
    return data


def test_bundled_catalogue_covers_every_image() -> None:
    catalogue = load_patch_catalogue(DATA / "patch_levels.yml")
    images = yaml.safe_load((DATA / "images.yml").read_text())["images"]
    assert set(catalogue.levels) == set(images)
    assert {e["image_id"] for e in images.values()} <= set(catalogue.image_built)
    assert catalogue.for_os("windows-server-2022").minimum == "20348.2849"


def test_stale_image_named_with_its_date_and_the_limit() -> None:
    catalogue = load_patch_catalogue(DATA / "patch_levels.yml")
    built = catalogue.image_built["ghal-ws2022-std-2026.11"]
    limit = catalogue.for_os("windows-server-2022").max_image_age_days
    fresh = stale_images(["windows-server-2022"], today=built + dt.timedelta(days=limit))
    assert fresh == []
    stale = stale_images(["windows-server-2022"], today=built + dt.timedelta(days=limit + 1))
    assert stale == [
        f"image ghal-ws2022-std-2026.11 (windows-server-2022) was built {built.isoformat()}, "
        f"{limit + 1} days ago; the patch catalogue allows {limit} days"
    ]


def test_plan_refuses_a_stale_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load((DATA / "patch_levels.yml").read_text())
    images = {**raw["images"], "ghal-w11-23h2-ent-2026.11": {"built": "2020-01-15"}}
    monkeypatch.setenv("REBUILD_DATA_DIR", str(_data_copy(tmp_path, {"images": images})))
    assert main(["plan", "site", "bastogne", "--register", str(SMALL_REGISTER)]) == 2
    err = capsys.readouterr().err
    assert "image ghal-w11-23h2-ent-2026.11 (windows-11-23h2) was built 2020-01-15" in err
    assert "allows 120 days" in err and "Traceback" not in err


def test_plan_refuses_an_image_of_unknown_age(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load((DATA / "patch_levels.yml").read_text())
    images = {k: v for k, v in raw["images"].items() if k != "ghal-ws2022-std-2026.11"}
    monkeypatch.setenv("REBUILD_DATA_DIR", str(_data_copy(tmp_path, {"images": images})))
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
