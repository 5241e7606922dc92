"""stormcheck package."""
