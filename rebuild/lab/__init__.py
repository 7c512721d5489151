"""The lab: a SIMULATED hospital fleet for rehearsals and tests.

Every twin here is a simulation that speaks the real protocols (WinRM, Redfish,
Wake-on-LAN, PXE/HTTP) so that rebuild's real Ansible, pywinrm and testinfra code
runs against it unchanged. Nothing outside this package may import it, except the
CLI's `lab` verb and the tests.
"""
