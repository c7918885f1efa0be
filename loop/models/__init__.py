"""Model contracts (``base``) and their implementations."""
