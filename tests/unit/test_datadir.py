"""Every loader of a data file honours REBUILD_DATA_DIR (rebuild.datadir)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rebuild.applications import load_catalogue
from rebuild.datadir import DATA_DIR_ENV, PROJECT_ROOT, default_data_dir
from rebuild.errors import ConfigError
from rebuild.harden.baseline import load_baseline
from rebuild.harden.exceptions import load_exceptions
from rebuild.iocs import load_indicators
from rebuild.promote import load_config

SHIPPED = PROJECT_ROOT / "inventories" / "data"


def test_the_default_is_the_checkout_s_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert default_data_dir() == SHIPPED


def test_an_empty_data_dir_is_where_every_loader_looks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=str(tmp_path / "applications.yml")):
        load_catalogue()
    with pytest.raises(ConfigError, match=str(tmp_path / "baseline.yml")):
        load_baseline()
    with pytest.raises(ConfigError, match=str(tmp_path / "iocs.yml")):
        load_indicators()
    assert load_exceptions() == []  # a missing default exceptions file means none


def test_a_copied_data_dir_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("tiers.yml", "applications.yml", "baseline.yml", "iocs.yml"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    (tmp_path / "promotion.yml").write_text("url: https://nac.example/api\ntoken_env: NAC_TOKEN\n")
    (tmp_path / "harden_exceptions.yml").write_text("exceptions: [{}]\n")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert load_catalogue().applications
    assert load_baseline().ids
    assert load_indicators() is not None
    assert load_config(env={"NAC_TOKEN": "t"}).url == "https://nac.example/api"
    with pytest.raises(ConfigError, match=str(tmp_path / "harden_exceptions.yml")):
        load_exceptions(known_controls=load_baseline().ids)
