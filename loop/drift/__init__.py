"""Drift after deployment: is the stream still what the served version was trained for?

``base.py`` holds the contract (a method compares a reference window with a current one and
returns its score, threshold and whether it crossed); ``embedding.py``, ``predictions.py``,
``performance.py`` and ``entities.py`` the methods; ``report.py`` runs them on one window;
``monitor.py`` cuts the scorer's stream into windows; ``store.py`` keeps the reports.
docs/drift.md explains the figures."""
