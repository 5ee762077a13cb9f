"""Drift: window sketches, reference profiles and the metrics that compare them."""
