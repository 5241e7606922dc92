"""stormcheck package."""

from stormcheck import one_name

one_name(__name__, "stormcheck.model")
