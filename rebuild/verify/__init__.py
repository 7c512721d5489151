"""Verification: prove a rebuilt host is clean and ready before it rejoins the hospital.

    expect   what a host must show (image, applications, IOC list, hardening) - built on the controller
    windows  the few PowerShell reads the suites use (standard Windows cmdlets, JSON out)
    registry_keys  the registry keys a host's suites read, fetched together at the first read
    suites/  pytest-testinfra suites, product code: common checks, per kind, per service
    runner   run the suites against one host over WinRM in a child process; JUnit per host; results
    server   the site run's warm verification server: one fork per host instead of a new Python
    client   its client and wire format

Credentials reach the pytest process through a private pipe, never argv, environment,
logs, JUnit or run artifacts.
"""

from rebuild.verify.expect import Expectations, build_expectations
from rebuild.verify.runner import VerifyResult, VerifyTarget, run_verification

__all__ = ["Expectations", "VerifyResult", "VerifyTarget", "build_expectations", "run_verification"]
