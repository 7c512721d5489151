"""The run folder (<state>/runs/<run id>): what a run writes before it starts, and what a dry
run rendered into it, counted from the files themselves."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from rebuild.errors import NO_ROOM_ERRNOS, StateError
from rebuild.orchestrator.resume import HostWork
from rebuild.plan import Plan


def write_run_files(run_dir: Path, plan: Plan | None, work: dict[str, HostWork]) -> None:
    """plan.json and work.json; on a full disk nothing is left behind and nothing is recorded."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "plan.json").write_text(plan.to_json() if plan else "{}\n", encoding="utf-8")
        (run_dir / "work.json").write_text(
            json.dumps({n: asdict(w) for n, w in work.items()}, indent=1), encoding="utf-8"
        )
    except OSError as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        if exc.errno in NO_ROOM_ERRNOS:
            raise StateError(
                f"cannot write the run folder {run_dir}: {exc.strerror}; nothing was recorded"
            ) from None
        raise


def rendered_summary(run_dir: Path, work: dict[str, HostWork], failed: dict[str, str]) -> str:
    """What a dry run rendered, counted from the files themselves, and what it did not."""
    boot = run_dir / "boot"
    wanted = sum(1 for w in work.values() if w.wipes)
    entries = len(list(boot.glob("mac-*.ipxe"))) if boot.is_dir() else 0
    answers = len(list((boot / "unattend").glob("*.xml"))) if boot.is_dir() else 0
    text = (
        f"rendered {entries} boot entries and {answers} answer files of {wanted} hosts to wipe into {boot}"
        if entries or answers
        else f"nothing rendered ({wanted} hosts to wipe)"
    )
    if failed:
        names = sorted(failed)
        text += f"; not rendered: {', '.join(names[:10])}" + (" ..." if len(names) > 10 else "")
        text += f" (first: {failed[names[0]].splitlines()[0][:300]})"
    return text + "; nothing was booted or reset"
