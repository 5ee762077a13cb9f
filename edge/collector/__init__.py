"""The fleet drift collector: ingest, store, drift engine, alerts, HTTP dashboard (``edge collector``)."""
