"""Two batch threads starting together both get ansible_runner whole (rebuild.launcher._init_runner).

ansible_runner's package binds `ansible_runner.plugins` to its plugin dict only at the end of its
__init__, after an entry-points scan; a second thread that imported `ansible_runner.interface`
meanwhile went on with the half-initialised package, and its Runner.run() failed with
"TypeError: 'module' object is not iterable" (a held batch starting while the first one imported).
The scan is made slow here so that the second thread surely arrives during it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

_PROGRAM = textwrap.dedent(
    """
    import importlib.metadata, sys, threading, time

    scan = importlib.metadata.entry_points

    def slow_scan(**kwargs):
        time.sleep(0.5)
        return scan(**kwargs)

    importlib.metadata.entry_points = slow_scan
    from rebuild import launcher

    seen = []

    def batch():
        launcher._init_runner()
        seen.append(type(sys.modules["ansible_runner"].plugins).__name__)

    threads = [threading.Thread(target=batch) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)  # the second starts while the first is in the package's scan
    for thread in threads:
        thread.join()
    print(",".join(seen))
    """
)


def test_a_second_batch_thread_waits_for_ansible_runner_to_be_imported_whole() -> None:
    # A fresh interpreter: in this one ansible_runner may be imported already.
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "dict,dict", done.stdout + done.stderr
