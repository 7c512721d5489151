"""Orchestration of a site rebuild.

run        the site run: waves -> batches -> one ansible-runner call each
events     runner events -> journal transitions (phase marker tasks)
resume     where each host resumes from its journal state
breaker    circuit breaker over a wave's failure rate
interlocks safety: one site, only its hosts, confirmation, --force-host
progress   live rich panel / JSON lines, per-host logs
status     `rebuild status`: counts per site, tier, service and failures, from the journal
"""

from rebuild.orchestrator.options import SiteRunOptions, SiteRunResult
from rebuild.orchestrator.run import run_site

__all__ = ["SiteRunOptions", "SiteRunResult", "run_site"]
