"""derms: a Distributed Energy Resource Management System."""

__version__ = "0.1.0"
