"""Monitoring statistics: plain modules, no I/O."""
