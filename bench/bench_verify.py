"""Controller CPU of one host's verification: a new `python -m pytest` vs a fork of the warm
verification server (rebuild.verify.server), against the SIMULATED lab.

    python bench/bench_verify.py [--repeat 5] [--out bench/results/verify.json]

Starts a lab of the small register (Arlon), rebuilds one PC through `rebuild site --rehearsal`
(reimage, harden, redeploy, verify; its rb-admin kept) so it passes verification, then verifies it `--repeat`
times each way and reports CPU seconds per host (user + system, the verifying processes only:
wait4 of the pytest child; for the server, its own CPU plus its reaped children's, less its
warm-up, which is reported apart: once per site run). The subprocess path is broken into
interpreter start + imports, collection (`--collect-only`) and the checks; the lab counts the
WS-Man requests one verification sends.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import _running_lab, rehearsal_site_argv  # noqa: E402
from verify_request import keep_admin, verify_request  # noqa: E402

from rebuild.verify.runner import SUITES, pytest_args, pytest_env, run_verification  # noqa: E402
from rebuild.verify.server import running_server  # noqa: E402

HOST = "ARL-URG-0002"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu(pid: int, children: bool = True) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _server_pid(socket: Path) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(socket).encode() in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    raise RuntimeError("no verification server process")


def _pytest_cpu(kind: str, config: bytes, extra: list[str]) -> float:
    """CPU of one `python -m pytest` with the verification's arguments (+ extra)."""
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "pytest", *pytest_args(kind, HOST, None, read_fd), *extra]
    before = _children_cpu()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(read_fd,),
        env=pytest_env(),
        cwd=str(SUITES),
    )
    os.close(read_fd)
    feeder = threading.Thread(target=lambda: os.write(write_fd, config) and os.close(write_fd))
    feeder.start()
    proc.wait()
    feeder.join()
    return _children_cpu() - before


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp,
        _running_lab(Path(tmp) / "lab", site="arlon", imaging_seconds=0) as lab,
    ):
        keep_admin(lab, HOST)
        argv = rehearsal_site_argv(lab, [HOST], "bench: no directory server is rebuilt")
        subprocess.run(argv, env={**os.environ, **lab.env}, check=True, capture_output=True, timeout=900)
        target, expect, password, previous = verify_request(lab, "arlon", HOST)
        config = json.dumps(
            {"target": target.__dict__, "password": password, "previous_password": previous,
             "expect": expect.to_dict()}
        ).encode()  # fmt: skip
        run_dir = Path(tmp) / "run"
        results: dict[str, object] = {"host": HOST, "repeat": args.repeat}

        def verify(server: Path | None) -> tuple[float, float, bool, int]:
            started = time.monotonic()
            result = run_verification(
                target, expect, password=password, previous_password=previous, run_dir=run_dir,
                server=server,
            )  # fmt: skip
            return 0.0, time.monotonic() - started, result.passed, result.tests

        imports = []
        collect = []
        sub_cpu, sub_wall = [], []
        for _ in range(args.repeat):
            before = _children_cpu()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import pytest, testinfra.host, winrm.protocol, rebuild.verify.plugin",
                ],
                env=pytest_env(),
                cwd=str(SUITES),
                check=True,
            )
            imports.append(_children_cpu() - before)
            collect.append(_pytest_cpu(expect.kind, config, ["--collect-only"]))
            before = _children_cpu()
            _, wall, passed, tests = verify(None)
            sub_cpu.append(_children_cpu() - before)
            sub_wall.append(wall)
            assert passed, "the rebuilt host did not pass verification"
        del proc
        with running_server(Path(tmp) / "server-run") as socket:
            pid = _server_pid(socket)
            time.sleep(0.5)
            while "warm after" not in (Path(tmp) / "server-run" / "verify" / "server.log").read_text():
                time.sleep(0.2)
            warm = _proc_cpu(pid)
            srv_cpu, srv_wall = [], []
            for _ in range(args.repeat):
                before = _proc_cpu(pid)
                requests_before = lab.client.requests().get(HOST, 0)
                _, wall, passed, tests = verify(socket)
                srv_cpu.append(_proc_cpu(pid) - before)
                srv_wall.append(wall)
                results["winrm_requests_per_host"] = lab.client.requests().get(HOST, 0) - requests_before
                assert passed, "the rebuilt host did not pass verification through the server"

        def median(values: list[float]) -> float:
            return round(sorted(values)[len(values) // 2], 3)

        results.update(
            checks=tests,
            subprocess_cpu_s=median(sub_cpu),
            subprocess_wall_s=median(sub_wall),
            subprocess_start_and_imports_cpu_s=median(imports),
            subprocess_collection_cpu_s=round(median(collect) - median(imports), 3),
            subprocess_checks_cpu_s=round(median(sub_cpu) - median(collect), 3),
            server_cpu_s=median(srv_cpu),
            server_wall_s=median(srv_wall),
            server_warm_up_cpu_s=round(warm, 3),
            load_average=os.getloadavg(),
        )
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
