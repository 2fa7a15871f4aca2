"""Contracts shared by the LearnFlow services: names, event payloads, the progress projection.

Every payload carries ``schema_version``; a breaking change adds a new model and version,
it never edits an existing one.
"""
