"""rebuild: bring a ransomware-hit Windows fleet back, site by site, most critical services first."""

__version__ = "0.1.0"
