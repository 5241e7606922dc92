"""stormcheck package."""

from stormcheck import one_name
from stormcheck._compiled import prefer_current

one_name(__name__, "stormcheck.model")
prefer_current(__name__, __path__)  # a compiled module runs only while it is a build of its source
