"""Durable state: detector baselines now; events, alerts and health with the service."""
