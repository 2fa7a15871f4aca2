"""Plumbing both LearnFlow services share: the Dapr sidecar client, the state-store outbox,
JSON errors, health endpoints, logging and metrics."""
