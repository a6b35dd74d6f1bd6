"""Hermes appliance: the supervisor, the daemons it runs, and the pure logic they share."""

__version__ = "0.1.0"
