"""Telemetry tests (a package, so that test module names such as test_profile.py do not collide with tests/models/)."""
