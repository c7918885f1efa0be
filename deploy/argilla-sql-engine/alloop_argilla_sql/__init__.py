"""alloop's SQL search engine for argilla-server 2.8; importing it registers the engine "sql"."""

from .engine import ENGINE_NAME, SqlSearchEngine

__all__ = ["ENGINE_NAME", "SqlSearchEngine"]
