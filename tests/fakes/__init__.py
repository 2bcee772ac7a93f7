"""Fake servers the test suite runs on loopback."""
