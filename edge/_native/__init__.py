"""Compiled kernels (built from ``native/*.pyx`` by setup.py). Private: import them through :mod:`edge.kernels`."""
