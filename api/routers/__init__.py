"""One router per resource: classify, models, health, metrics."""
