"""Readiness: which settings make a DC produce the events the sensor needs (reference/audit-policy.md)."""
