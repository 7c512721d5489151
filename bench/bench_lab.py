#!/usr/bin/env python3
"""Bench: `lab up` of the whole bundled fleet (~1,700 SIMULATED twins) on this machine.

Prints time to ready (CLI start -> daemon reports ready: listeners, reimage side, overlay and
seeded secrets), the resident memory of the lab (daemon + its children, e.g. sushy-emulator),
the WinRM transport latency of every twin (NTLM over HTTPS with validation, one shell
create + delete through pywinrm), and `ansible.windows.win_ping` latency per host through
Ansible's real winrm connection (ansible-runner, event durations) for a sample of hosts
(`--ping-all` for every host: slow on 2 cores, Ansible forks dominate).

Targets (issue 3): ready < 60 s, RSS < 2 GB.

    python bench/bench_lab.py [--register PATH] [--sample 60] [--ping-all] [--forks 20]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import winrm

from rebuild.lab import daemon, fleet
from rebuild.secrets import SecretStore


def _free_prefix() -> str:
    candidates = list(range(30, 251))
    random.shuffle(candidates)
    for n in candidates:
        probe = socket.socket()
        try:
            probe.bind((f"127.{n}.0.2", 5986))
            return f"127.{n}"
        except OSError:
            continue
        finally:
            probe.close()
    raise SystemExit("no free 127.N prefix")


def _rss_kb(pid: int) -> int:
    """RSS of a process and all its descendants (kB)."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                stack += [int(c) for c in (task / "children").read_text().split()]
    return total


def _percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"min {ordered[0] * 1000:.0f} ms, median {statistics.median(ordered) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )


def transport_latency(twins: list[dict[str, Any]], store: SecretStore, ca: str) -> dict[str, float | str]:
    def one(twin: dict[str, Any]) -> tuple[str, float | str]:
        start = time.monotonic()
        try:
            p = winrm.Protocol(
                f"https://{twin['address']}:5986/wsman",
                transport="ntlm",
                username="rb-admin",
                password=str(store.get(twin["name"])),
                ca_trust_path=ca,
            )
            p.close_shell(p.open_shell())
        except Exception as exc:
            return twin["name"], f"FAILED {type(exc).__name__}: {exc}"
        return twin["name"], time.monotonic() - start

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, twins))


def ansible_ping(
    lab_info: dict[str, Any], hosts: list[str], forks: int, work: Path
) -> dict[str, float | str]:
    import ansible_runner

    work.mkdir(parents=True, exist_ok=True)
    inventories = list(lab_info["inventory"].values())
    env = {
        "REBUILD_STATE_DIR": lab_info["state_dir"],
        "ANSIBLE_CONFIG": str(Path(__file__).parents[1] / "ansible.cfg"),
    }
    result = ansible_runner.run(
        private_data_dir=str(work),
        module="ansible.windows.win_ping",
        host_pattern=",".join(hosts),
        inventory=inventories,
        forks=forks,
        envvars=env,
        quiet=True,
    )
    latency: dict[str, float | str] = {}
    for event in result.events:
        data = event.get("event_data", {})
        host = data.get("host")
        if not host:
            continue
        if event["event"] == "runner_on_ok":
            latency[host] = float(data.get("duration", 0.0))
        elif event["event"] in ("runner_on_failed", "runner_on_unreachable"):
            msg = data.get("res", {}).get("msg", "") or str(data.get("res", {}))[:200]
            latency[host] = f"FAILED {msg}"
    return latency


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--register", type=Path, default=fleet.DEFAULT_REGISTER)
    parser.add_argument(
        "--sample", type=int, default=60, help="hosts pinged with ansible (spread over sites)"
    )
    parser.add_argument("--ping-all", action="store_true")
    parser.add_argument("--forks", type=int, default=20)
    parser.add_argument("--quiet", action="store_true", help="summaries only, no per-host lines")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    options = daemon.DaemonOptions(work / "lab", args.register, None, _free_prefix(), 0.0)
    print("SIMULATED lab benchmark (rebuild): twins are simulations on loopback.")
    start = time.monotonic()
    info = daemon.up(options, timeout=600)
    ready = time.monotonic() - start
    try:
        rss_mb = _rss_kb(int(info["pid"])) / 1024
        print(
            f"lab up: {info['twins']} twins ready in {ready:.1f} s (daemon's own count: "
            f"{info['seconds_to_ready']} s); resident memory {rss_mb:.0f} MB (daemon + children)"
        )
        print(
            f"targets: ready < 60 s -> {'OK' if ready < 60 else 'MISSED'}; "
            f"RSS < 2048 MB -> {'OK' if rss_mb < 2048 else 'MISSED'}"
        )

        client = daemon.LabClient(options.lab_dir)
        twins = client.status()["twins"]
        store = SecretStore(Path(info["state_dir"]), key_file=Path(info["state_dir"]) / "vault-password")
        t0 = time.monotonic()
        transport = transport_latency(twins, store, info["ca_bundle"])
        ok = [v for v in transport.values() if isinstance(v, float)]
        print(
            f"WinRM transport (NTLM/HTTPS, shell create+delete) on {len(twins)} twins in "
            f"{time.monotonic() - t0:.1f} s: {len(ok)} ok; {_percentiles(ok)}"
        )

        if args.ping_all:
            sample = [t["name"] for t in twins]
        else:
            by_site: dict[str, list[str]] = {}
            for twin in twins:
                by_site.setdefault(twin["site"], []).append(twin["name"])
            per_site = max(1, args.sample // max(1, len(by_site)))
            sample = [
                n for names in by_site.values() for n in names[:: max(1, len(names) // per_site)][:per_site]
            ]
        t0 = time.monotonic()
        pings = ansible_ping(info, sample, args.forks, work / "runner")
        good = [v for v in pings.values() if isinstance(v, float)]
        elapsed = time.monotonic() - t0
        print(
            f"ansible.windows.win_ping on {len(sample)} hosts (forks {args.forks}) in {elapsed:.1f} s: "
            f"{len(good)} ok, {len(sample) - len(good)} failed; {_percentiles(good)}"
        )
        if not args.quiet:
            print("per host: name  transport_ms  win_ping_ms")
            for twin in twins:
                name = twin["name"]
                tr = transport.get(name)
                pg = pings.get(name, "-")
                tr_text = f"{tr * 1000:.0f}" if isinstance(tr, float) else str(tr)
                pg_text = f"{pg * 1000:.0f}" if isinstance(pg, float) else str(pg)
                print(f"  {name:<18} {tr_text:>8} {pg_text}")
        requests = client.requests()
        print(f"WS-Man requests answered: {sum(requests.values())} in total")
    finally:
        daemon.down(options.lab_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
