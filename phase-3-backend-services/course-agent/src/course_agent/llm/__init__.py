"""Adapters that turn a rendered prompt into a lesson: OpenAI-compatible APIs and recordings."""
