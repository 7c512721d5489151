"""Hardening: the hospital baseline as data, compiled per host, applied in one module call.

`baseline` loads and validates the controls, `exceptions` the recorded exceptions,
`compile` turns both into the list one host gets, and `report` turns the module's
per-control result into compliant / fixed / excepted / failed for the journal and people.
"""
