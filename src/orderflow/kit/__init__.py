"""Cross-cutting infrastructure: settings, database, Redis, errors, metrics, the app factory."""
