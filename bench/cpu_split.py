"""Where a command's CPU goes, by process kind: Linux process accounting (acct(2)) of every
process the command started, grouped by its chain of ancestors.

    sudo python bench/cpu_split.py --hosts 27 -- \
        scripts/rehearse.sh arlon --register inventories/example/register-small.csv

wait4 gives one number for a whole process tree; the per-kind split is what says which component
blocks the CPU target (issue 15). Process accounting writes one record per process when it exits
(its own user + system CPU, its parent, whether it forked without exec'ing: Ansible's workers),
so a worker that lived 50 ms is counted whole, which sampling /proc would miss. Only processes
that descend from the command count (the machine may run other jobs); a daemon that detached
from it (the lab's) is outside, as in bench_site.py. Needs root (CAP_SYS_PACCT); accounting is
switched off again however the command ends. Linux only (struct acct_v3).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import struct
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

# struct acct_v3 (linux/acct.h): flag, version, tty, exitcode, uid, gid, pid, ppid, btime,
# etime (float), utime, stime, mem, io, rw, minflt, majflt, swaps (comp_t), comm[16].
_RECORD = struct.Struct("=BBHIIIIIIf8H16s")
_AFORK = 0x01  # forked but did not exec
_AHZ = 100  # comp_t times are in 1/AHZ s


def _comp_t(value: int) -> int:
    """comp_t: 13-bit mantissa, 3-bit base-8 exponent."""
    return (value & 0x1FFF) << (3 * ((value >> 13) & 0x7))


@dataclass(frozen=True)
class Exited:
    pid: int
    ppid: int
    comm: str
    forked: bool
    cpu_s: float


def read_records(path: Path) -> list[Exited]:
    data = path.read_bytes()
    out = []
    for offset in range(0, len(data) - _RECORD.size + 1, _RECORD.size):
        fields = _RECORD.unpack_from(data, offset)
        if fields[1] != 3:
            raise SystemExit(f"{path}: accounting record version {fields[1]}, expected 3 (acct_v3)")
        utime, stime = _comp_t(fields[10]), _comp_t(fields[11])
        out.append(
            Exited(
                pid=fields[6],
                ppid=fields[7],
                comm=fields[18].split(b"\0", 1)[0].decode(errors="replace"),
                forked=bool(fields[0] & _AFORK),
                cpu_s=(utime + stime) / _AHZ,
            )
        )
    return out


def descendants(records: list[Exited], root: int) -> list[tuple[Exited, list[Exited]]]:
    """Each process that descends from `root` (root included), with its ancestry from itself up
    to root. A pid reused during the run is matched to the process that had it last, which the
    ordering by exit makes the nearest one; a chain that loops or leaves the records is not one."""
    by_pid = {r.pid: r for r in records}
    out = []
    for r in records:
        chain, cur = [r], r
        while cur.pid != root:
            parent = by_pid.get(cur.ppid)
            if parent is None or parent in chain:
                break
            chain.append(parent)
            cur = parent
        else:
            out.append((r, chain))
    return out


def kind_chains(records: list[Exited], root: int) -> dict[str, tuple[int, float]]:
    """CPU of the processes under `root`, summed by their chain of kinds ("comm", "+fork" for a
    fork that did not exec), root first."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for r, chain in descendants(records, root):
        key = " > ".join(p.comm + (" +fork" if p.forked else "") for p in reversed(chain))
        totals[key][0] += 1
        totals[key][1] += r.cpu_s
    return {k: (int(v[0]), v[1]) for k, v in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, help="divide by this many hosts (CPU s per host)")
    parser.add_argument(
        "--per-process",
        metavar="COMM",
        help="also list the CPU of each process named COMM that exec'd (e.g. ansible-playboo)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command: bench/cpu_split.py -- COMMAND ...")
    libc = ctypes.CDLL(None, use_errno=True)
    with tempfile.TemporaryDirectory(prefix="cpu-split-") as tmp:
        log = Path(tmp, "pacct")
        log.touch()
        if libc.acct(str(log).encode()) != 0:
            err = ctypes.get_errno()
            raise SystemExit(
                f"process accounting could not start ({os.strerror(err)}): it needs root (CAP_SYS_PACCT)"
            )
        try:
            proc = subprocess.run(command, check=False)
        finally:
            libc.acct(None)
        records = read_records(log)
    root = _root_pid(records)
    chains = kind_chains(records, root)
    total = sum(cpu for _, cpu in chains.values())
    per = args.hosts or 1
    unit = "CPU s per host" if args.hosts else "CPU s"
    print(f"\n{' '.join(command)}: exit {proc.returncode}, {total:.1f} CPU s in the command's process tree")
    print(f"{'processes':>9}  {unit:>15}  share  chain of process kinds (root first)")
    for key, (count, cpu) in sorted(chains.items(), key=lambda kv: -kv[1][1]):
        if cpu / max(total, 1e-9) >= 0.002:
            print(f"{count:9d}  {cpu / per:15.3f}  {cpu / max(total, 1e-9):5.1%}  {key}")
    if args.per_process:
        cpus = [r.cpu_s for r, _ in descendants(records, root) if r.comm == args.per_process and not r.forked]
        print(f"{args.per_process} (not forked): {len(cpus)} processes, CPU s each: {sorted(cpus)}")
    return 0


def _root_pid(records: list[Exited]) -> int:
    """subprocess.run does not give the pid after the fact: the command is the record whose parent
    is this process."""
    mine = [r for r in records if r.ppid == os.getpid()]
    if not mine:
        raise SystemExit("process accounting recorded nothing of the command (another acct(2) user?)")
    return mine[-1].pid


if __name__ == "__main__":
    sys.exit(main())
