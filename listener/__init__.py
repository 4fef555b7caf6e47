"""Listener: hear every unhappy customer, answer fast, make it right."""

__version__ = "0.1.0"
