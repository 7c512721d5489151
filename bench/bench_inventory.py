#!/usr/bin/env python3
"""Bench: register -> validated hosts -> per-site static inventories, at 100,000 rows.

    python bench/bench_inventory.py [--rows 100000] [--keep DIR] [--tracemalloc]
    python bench/bench_inventory.py --same-tag 8000


Generates a register with scripts/generate_example_register.py (in a child process, so its
memory is not counted), then times load + validate + build + write in this process and
prints wall time per stage and the peak memory (peak RSS of this process, interpreter
included; with --tracemalloc also the Python heap peak, which slows the run).

The 100,000-row fleet does not fit the bundled sites' address plan, so the bench uses a
copy of inventories/data whose site networks are /16s matching the generator's wide layout.
Target (issue 2): under 5 s and under 500 MB on the 2-core machine.

--same-tag N (issue 11, item 12): N rows sharing one asset tag, the worst case for duplicate
messages. Times load + validate + the strict refusal's text, and prints the problems' total
and longest size, to show time, memory and output stay linear (a message names 5 rows and a
count; the refusal lists 50 problems and a summary line).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "inventories" / "data"
TARGET_SECONDS, TARGET_MB = 5.0, 500.0


def wide_data_dir(into: Path) -> Path:
    """inventories/data with each site's networks widened to the generator's wide layout."""
    into.mkdir(parents=True, exist_ok=True)
    for name in ("tiers.yml", "register_aliases.yml", "connection.yml", "applications.yml"):
        shutil.copy(DATA / name, into / name)
    sites = yaml.safe_load((DATA / "sites.yml").read_text(encoding="utf-8"))
    for site in sites["sites"]:
        octet = int(site["networks"][0]["cidr"].split(".")[1])
        site["networks"] = [
            {
                "name": name,
                "cidr": f"10.{octet + shift}.0.0/16",
                "wol_broadcast": f"10.{octet + shift}.255.255",
            }
            for name, shift in (("servers", 0), ("clinical", 20), ("admin", 40))
        ]
    (into / "sites.yml").write_text(yaml.safe_dump(sites, sort_keys=False), encoding="utf-8")
    return into


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def same_tag(rows: int, work: Path) -> int:
    """N PCs sharing one asset tag (otherwise distinct): every row is a duplicate of all others."""
    from rebuild.errors import RegisterError
    from rebuild.register import EXPORT_HEADERS_EN, load_register

    register = work / f"same-tag-{rows}.csv"
    lines = [",".join(EXPORT_HEADERS_EN)]
    for n in range(rows):
        lines.append(
            f"GHAL-1,ARL-PC-{n:05d},PC,Physical,Windows 11,Arlon,Urgences,U1,"
            f"10.31.{n // 250}.{n % 250 + 2},d0:94:66:01:{n // 256:02x}:{n % 256:02x},,,,,"
        )
    register.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.environ["REBUILD_DATA_DIR"] = str(wide_data_dir(work / "data"))
    baseline_mb = peak_rss_mb()
    c0, t0 = time.process_time(), time.perf_counter()
    result = load_register(register)
    messages = [str(p) for p in result.problems]
    refusal = str(RegisterError(messages))
    c1, t1 = time.process_time(), time.perf_counter()
    duplicates = sum("duplicate asset tag" in m for m in messages)
    print(f"rows:                 {rows} sharing asset tag GHAL-1")
    print(f"load+validate+messages: {t1 - t0:6.2f} s wall, {c1 - c0:6.2f} s CPU")
    print(f"problems:             {len(messages)} ({duplicates} duplicate asset tag)")
    total_mb, longest = sum(map(len, messages)) / 1e6, max(map(len, messages))
    print(f"all messages:         {total_mb:.2f} MB, longest {longest} chars")
    print(f"strict refusal text:  {len(refusal)} chars ({refusal.count(chr(10))} lines)")
    print(f"peak RSS:             {peak_rss_mb():6.0f} MB  (before the run {baseline_mb:.0f} MB)")
    print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep the files")
    parser.add_argument("--tracemalloc", action="store_true", help="also report the Python heap peak")
    parser.add_argument("--same-tag", type=int, metavar="N", help="only the duplicate case: N rows, one tag")
    args = parser.parse_args()

    if args.same_tag:
        work = args.keep or Path(tempfile.mkdtemp(prefix="rebuild-bench-"))
        work.mkdir(parents=True, exist_ok=True)
        try:
            return same_tag(args.same_tag, work)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)

    work = args.keep or Path(tempfile.mkdtemp(prefix="rebuild-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    register = work / f"register-{args.rows}.csv"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_example_register.py"), "--rows", str(args.rows),
         "--out", str(register)],
        check=True,
    )  # fmt: skip
    print(
        f"generated {register} ({register.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s"  # noqa: E501
    )

    os.environ["REBUILD_DATA_DIR"] = str(wide_data_dir(work / "data"))
    from rebuild.inventory import write_site_inventories
    from rebuild.register import load_register

    baseline_mb = peak_rss_mb()
    if args.tracemalloc:
        tracemalloc.start()
    c0, t0 = time.process_time(), time.perf_counter()
    result = load_register(register)
    c1, t1 = time.process_time(), time.perf_counter()
    result.raise_for_problems()
    written = write_site_inventories(result.hosts, work / "inventory")
    c2, t2 = time.process_time(), time.perf_counter()
    heap = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
    peak = peak_rss_mb()

    rows = len(result.hosts) + sum(result.skipped.values()) + len(result.rejects)
    size = sum(p.stat().st_size for p in written.values()) / 1e6
    total = t2 - t0
    print(f"rows read:            {rows} ({len(result.hosts)} hosts, left out {result.skipped})")
    print(f"load + validate:      {t1 - t0:6.2f} s wall, {c1 - c0:6.2f} s CPU")
    print(
        f"build + write:        {t2 - t1:6.2f} s wall, {c2 - c1:6.2f} s CPU  ({len(written)} site files, {size:.0f} MB)"  # noqa: E501
    )
    print(f"total wall time:      {total:6.2f} s  (target < {TARGET_SECONDS:.0f} s; CPU {c2 - c0:.2f} s)")
    print(
        f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (shared: wall time includes waiting)"  # noqa: E501
    )
    print(
        f"peak RSS:             {peak:6.0f} MB  (before the run {baseline_mb:.0f} MB; target < {TARGET_MB:.0f} MB)"  # noqa: E501
    )
    if heap is not None:
        print(f"python heap peak:     {heap:6.0f} MB  (tracemalloc; slows the run)")
    ok = total < TARGET_SECONDS and peak < TARGET_MB
    print("result:               " + ("within target" if ok else "OVER TARGET"))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
