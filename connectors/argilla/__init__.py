"""Argilla: datasets and workspaces, answers read from webhooks and polls, the oracle annotator."""
