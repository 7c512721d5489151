"""execution-environment.yml (ansible-builder 3) stays in step with pyproject.toml (issue 17)."""

from __future__ import annotations

import re
import tomllib

import yaml

from rebuild.tiers import PROJECT_ROOT


def _pins() -> dict[str, str]:
    """pyproject's dependencies as name -> version specifier."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = {}
    for requirement in project["dependencies"]:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", requirement).groups()  # type: ignore[union-attr]
        pins[name] = spec.strip()
    return pins


def test_the_execution_environment_has_the_projects_pins_and_files() -> None:
    ee = yaml.safe_load((PROJECT_ROOT / "execution-environment.yml").read_text(encoding="utf-8"))
    assert ee["version"] == 3
    pins = _pins()
    deps = ee["dependencies"]
    assert deps["ansible_core"]["package_pip"] == "ansible-core" + pins["ansible-core"]
    assert deps["ansible_runner"]["package_pip"] == "ansible-runner" + pins["ansible-runner"]
    assert (PROJECT_ROOT / deps["galaxy"]).is_file()
    for requirement in deps["python"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)  # type: ignore[union-attr]
        assert requirement == name + pins[name], f"{requirement}: pyproject.toml says {name}{pins[name]}"
    for item in ee["additional_build_files"]:
        assert (PROJECT_ROOT / item["src"]).exists(), item["src"]
