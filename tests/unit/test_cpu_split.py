"""bench/cpu_split.py: process accounting records (struct acct_v3) read back, and CPU grouped by
the chain of process kinds under the command, other processes of the machine left out."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import cpu_split


def _record(pid: int, ppid: int, comm: str, cpu_ticks: int, *, forked: bool = False) -> bytes:
    # utime as comp_t: 13-bit mantissa, 3-bit base-8 exponent (1 tick = 1/100 s)
    exponent = 0
    while cpu_ticks >= 0x2000:
        cpu_ticks >>= 3
        exponent += 1
    utime = (exponent << 13) | cpu_ticks
    return cpu_split._RECORD.pack(
        1 if forked else 0, 3, 0, 0, 0, 0, pid, ppid, 0, 0.0, utime, 0, 0, 0, 0, 0, 0, 0, comm.encode()
    )


def test_records_are_read_with_their_cpu_parent_and_fork_flag(tmp_path: Path) -> None:
    log = tmp_path / "pacct"
    log.write_bytes(_record(11, 10, "ansible-playboo", 150, forked=True) + _record(10, 1, "rebuild", 70000))
    worker, main = cpu_split.read_records(log)
    assert (worker.pid, worker.ppid, worker.comm, worker.forked, worker.cpu_s) == (
        11,
        10,
        "ansible-playboo",
        True,
        1.5,
    )
    # 70000 ticks does not fit 13 bits: the exponent keeps it to within 1/8 of the value
    assert (main.forked, abs(main.cpu_s - 700.0) <= 700.0 / 8) == (False, True)


def test_an_older_record_format_is_refused_by_name(tmp_path: Path) -> None:
    log = tmp_path / "pacct"
    record = bytearray(_record(11, 10, "x", 1))
    record[1] = 2  # ac_version
    log.write_bytes(bytes(record))
    try:
        cpu_split.read_records(log)
    except SystemExit as exc:
        assert "acct_v3" in str(exc)
    else:
        raise AssertionError("a version-2 record was read as version 3")


def test_cpu_is_summed_by_chain_of_kinds_and_only_under_the_command() -> None:
    E = cpu_split.Exited
    records = [
        E(pid=21, ppid=20, comm="ansible-playboo", forked=True, cpu_s=0.07),
        E(pid=22, ppid=20, comm="ansible-playboo", forked=True, cpu_s=0.05),
        E(pid=20, ppid=10, comm="ansible-playboo", forked=False, cpu_s=1.0),
        E(pid=30, ppid=10, comm="python3", forked=False, cpu_s=0.3),
        E(pid=99, ppid=1, comm="pytest", forked=False, cpu_s=50.0),  # another job on the machine
        E(pid=10, ppid=5, comm="rebuild", forked=False, cpu_s=0.2),
    ]
    chains = cpu_split.kind_chains(records, root=10)
    assert chains["rebuild > ansible-playboo > ansible-playboo +fork"][0] == 2
    assert abs(chains["rebuild > ansible-playboo > ansible-playboo +fork"][1] - 0.12) < 1e-9
    assert chains["rebuild > ansible-playboo"] == (1, 1.0)
    assert chains["rebuild > python3"] == (1, 0.3)
    assert chains["rebuild"] == (1, 0.2)
    assert not any("pytest" in key for key in chains)
