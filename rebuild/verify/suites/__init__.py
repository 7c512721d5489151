"""Verification suites (pytest-testinfra). Run only through rebuild.verify.runner."""
