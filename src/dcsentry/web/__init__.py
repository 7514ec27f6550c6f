"""HTTP: Prometheus metrics and health probes now; the REST API and console with issue 8."""
