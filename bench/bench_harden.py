#!/usr/bin/env python3
"""Bench: the one-call harden role against one task per setting, on lab twins, in one run.

    python bench/bench_harden.py [--hosts 50] [--forks 20] [--out bench/results/harden.json]

Starts ONE SIMULATED lab (loopback, unique 127.N prefix) of 2 x N compromised Windows 11
workstations. Group A (N twins) gets the harden role (the whole compiled list in one
win_rebuild_baseline call); group B (N twins) gets the same baseline as one Ansible task per
setting (win_regedit / win_service / win_optional_feature per setting: the reference CIS
roles' approach). Both use the same baseline file, the same Ansible, forks and connection.

Measured, never estimated: WinRM round trips per host are the lab's own WS-Man request
counts (create shell, command, send, receive, signal, delete: each one HTTP request/response)
before and after each run; wall time is the ansible-playbook run's. Afterwards a check-mode
audit of group B with the one-call module shows the per-setting run reached the same state.

The baseline used by both is the project baseline restricted to the settings the lab
simulates a per-setting module for (registry values under HKLM without wildcards, services,
optional features); the report says how many settings that is of the full baseline.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rebuild.datadir import data_file  # noqa: E402
from rebuild.harden.baseline import BASELINE_FILE, load_baseline  # noqa: E402
from rebuild.harden.compile import HostFacts, compile_host  # noqa: E402
from rebuild.lab import daemon  # noqa: E402
from rebuild.lab.prefix import claim_prefix  # noqa: E402
from rebuild.register import EXPORT_HEADERS_EN  # noqa: E402

OS_KEY = "windows-11-23h2"
SIMULATED_TYPES = ("registry", "service", "feature")
REG_TYPES = {
    "dword": "dword",
    "qword": "qword",
    "string": "string",
    "expand_string": "expandstring",
    "multi_string": "multistring",
}


def write_register(path: Path, count: int) -> list[str]:
    """2 x count Windows 11 workstations at Arlon (clinical network), unique names/IP/MAC."""
    header = list(EXPORT_HEADERS_EN)
    names = []
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(1, 2 * count + 1):
            name = f"ARL-BENCH-{i:04d}"
            names.append(name)
            w.writerow(
                [
                    f"GHAL-9{i:05d}",
                    name,
                    "PC",
                    "Physical",
                    "Windows 11 23H2",
                    "Arlon",
                    "Urgences",
                    f"Box {i}",
                    f"10.11.{16 + i // 250}.{i % 250 + 2}",
                    f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
                    "",
                    "",
                    "",
                    "In service",
                    f"BENCH{i:05d}",
                ]
            )
    return names


def subset_baseline(out: Path) -> tuple[int, int]:
    """The project baseline restricted to settings the lab has per-setting module twins for."""
    raw = yaml.safe_load(data_file(BASELINE_FILE).read_text(encoding="utf-8"))
    total = sum(len(c["settings"]) for c in raw["controls"])
    kept = []
    for c in raw["controls"]:
        settings = [
            s
            for s in c["settings"]
            if s["type"] in SIMULATED_TYPES
            and not (s["type"] == "registry" and ("*" in s["path"] or not s["path"].startswith("HKLM:")))
        ]
        if settings:
            kept.append({**c, "settings": settings})
    raw["controls"] = kept
    out.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return total, sum(len(c["settings"]) for c in kept)


def per_setting_tasks(baseline_path: Path) -> list[dict[str, Any]]:
    """One task per setting, named like the reference roles: '<ID> | PATCH | <title>'."""
    baseline = load_baseline(baseline_path)
    compiled = compile_host(
        baseline, HostFacts("BENCH", OS_KEY, "workstation", "arlon"), protected_accounts=["rb-admin"]
    )
    tasks: list[dict[str, Any]] = []
    for control in compiled.controls:
        for s in control["settings"]:
            name = f"{control['id']} | PATCH | {control['title']} | {s['key']}"
            if s["type"] == "registry":
                tasks.append(
                    {
                        "name": name,
                        "ansible.windows.win_regedit": {
                            "path": s["path"],
                            "name": s["name"],
                            "data": s["data"],
                            "type": REG_TYPES[s["value_type"]],
                        },
                    }
                )
            elif s["type"] == "service":
                args = {
                    "name": s["name"],
                    "start_mode": {"automatic": "auto"}.get(s["start_mode"], s["start_mode"]),
                }
                if s.get("state"):
                    args["state"] = {"running": "started", "stopped": "stopped"}[s["state"]]
                tasks.append({"name": name, "ansible.windows.win_service": args})
            elif s["type"] == "feature":
                tasks.append(
                    {
                        "name": name,
                        "ansible.windows.win_optional_feature": {
                            "name": s["name"],
                            "state": "present" if s["enabled"] else "absent",
                        },
                    }
                )
    return tasks


def run_playbook(
    playbook: Path, inventory: Path, limit: str, env: dict[str, str], forks: int
) -> tuple[float, int, str]:
    started = time.monotonic()
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "--limit", limit, "--forks", str(forks), str(playbook)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return time.monotonic() - started, proc.returncode, proc.stdout[-4000:] + proc.stderr[-2000:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=50, help="twins per approach (default 50)")
    ap.add_argument("--forks", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "harden.json")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rebuild-bench-harden-"))
    register = work / "register.csv"
    names = write_register(register, args.hosts)
    group_a, group_b = names[: args.hosts], names[args.hosts :]
    baseline_path = work / "baseline-bench.yml"
    total_settings, bench_settings = subset_baseline(baseline_path)

    one_call = work / "one_call.yml"
    one_call.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "bench | harden role (one module call per host)",
                    "hosts": "all",
                    "gather_facts": False,
                    "vars": {
                        "harden__baseline": str(baseline_path),
                        "harden__reboot": False,
                        "harden__fail_on_manual": False,
                    },
                    "roles": [{"role": "harden"}],
                }
            ],
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    per_setting = work / "per_setting.yml"
    tasks = per_setting_tasks(baseline_path)
    per_setting.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "bench | one task per setting (reference roles' approach)",
                    "hosts": "all",
                    "gather_facts": False,
                    "tasks": tasks,
                }
            ],
            sort_keys=False,
        ),
        encoding="utf-8",
    )

    prefix, lock = claim_prefix()
    lab_dir = work / "lab"
    print(f"bench: SIMULATED lab of {len(names)} twins on {prefix}.x.y in {lab_dir}", flush=True)
    info = daemon.up(
        daemon.DaemonOptions(
            lab_dir=lab_dir, register=register, site="arlon", address_prefix=prefix, imaging_seconds=1.0
        ),
        timeout=600,
    )
    client = daemon.LabClient(lab_dir)
    try:
        inventory = Path(info["inventory"]["arlon"])
        state_dir = Path(info["state_dir"])
        env = {
            **os.environ,
            "REBUILD_STATE_DIR": str(state_dir),
            "REBUILD_VAULT_PASSWORD_FILE": str(state_dir / "vault-password"),
            "REBUILD_LAB_DIR": str(lab_dir),
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
        }
        results: dict[str, Any] = {}
        for label, playbook, group in (
            ("one_call", one_call, group_a),
            ("per_setting", per_setting, group_b),
        ):
            before = client.requests()
            wall, rc, tail = run_playbook(playbook, inventory, ",".join(group), env, args.forks)
            after = client.requests()
            trips = [after.get(h, 0) - before.get(h, 0) for h in group]
            results[label] = {
                "hosts": len(group),
                "wall_seconds": round(wall, 2),
                "rc": rc,
                "round_trips_per_host_mean": round(sum(trips) / len(trips), 1),
                "round_trips_per_host_max": max(trips),
                "round_trips_total": sum(trips),
            }
            print(
                f"bench: {label}: rc={rc} wall={wall:.1f}s "
                f"round trips/host={results[label]['round_trips_per_host_mean']}",
                flush=True,
            )
            if rc != 0:
                print(tail, file=sys.stderr)
        # Same end state? Audit group B with the one-call module in check mode.
        audit = work / "audit.yml"
        audit.write_text(
            yaml.safe_dump(
                [
                    {
                        "name": "bench | audit the per-setting group",
                        "hosts": "all",
                        "gather_facts": False,
                        "vars": {
                            "harden__baseline": str(baseline_path),
                            "rebuild_harden_check_mode": True,
                            "harden__fail_on_manual": False,
                        },
                        "roles": [{"role": "harden"}],
                    }
                ],
                sort_keys=False,
            ),
            encoding="utf-8",
        )
        env_json = {**env, "ANSIBLE_STDOUT_CALLBACK": "json"}
        proc = subprocess.run(
            ["ansible-playbook", "-i", str(inventory), "--limit", ",".join(group_b), str(audit)],
            cwd=ROOT,
            env=env_json,
            capture_output=True,
            text=True,
        )
        noncompliant: dict[str, list[str]] = {}
        try:
            out = json.loads(proc.stdout[proc.stdout.index("{") :])
            for task in out["plays"][0]["tasks"]:
                if task["task"]["name"].endswith("harden | apply baseline (one module call)"):
                    for host, res in task["hosts"].items():
                        bad = [
                            c
                            for c, s in res["summary"]["controls"].items()
                            if s not in ("compliant", "not_applicable")
                        ]
                        if bad:
                            noncompliant[host] = bad
        except (ValueError, KeyError) as exc:
            noncompliant["<audit>"] = [f"could not read the audit: {exc}"]
    finally:
        daemon.down(lab_dir)
        lock.close()

    a, b = results["one_call"], results["per_setting"]
    summary = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "lab": "SIMULATED (rebuild lab twins on loopback)",
        "hosts_per_approach": args.hosts,
        "forks": args.forks,
        "settings_in_bench_baseline": bench_settings,
        "settings_in_full_baseline": total_settings,
        "per_setting_tasks": len(tasks),
        "one_call": a,
        "per_setting": b,
        "round_trip_ratio": round(
            b["round_trips_per_host_mean"] / max(a["round_trips_per_host_mean"], 1e-9), 1
        ),
        "wall_time_ratio": round(b["wall_seconds"] / max(a["wall_seconds"], 1e-9), 1),
        "per_setting_group_left_noncompliant": noncompliant,
        "targets": {"round_trips": ">= 50x fewer", "wall_time": ">= 10x less"},
    }
    summary["targets_met"] = {
        "round_trips": summary["round_trip_ratio"] >= 50,
        "wall_time": summary["wall_time_ratio"] >= 10,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    return 0 if a["rc"] == 0 and b["rc"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
