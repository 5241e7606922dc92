"""stormcheck package."""

__all__ = ["one_name", "count", "__version__"]

# The one statement of the version: pyproject.toml reads it ([tool.setuptools.dynamic]), and the
# program prints and records it from here. Looking it up in the installed metadata instead
# (importlib.metadata) takes longer than `stormcheck check gitter-2015` takes to search.
__version__ = "0.1.0"


def one_name(name: str, expected: str) -> None:
    """Refuse a source folder imported under a name other than its package's.

    The repository's folders install as subpackages of this one package
    (pyproject.toml, package-dir). Imported by its bare name as well (``import
    model`` from the repository root), every module in it would exist twice,
    with two distinct classes of each error, and an ``except`` for one would
    miss the other.
    """
    if name != expected:
        raise ImportError(f"import {expected}, not {name}: this folder is part of the stormcheck package "
                          "(pip install -e . from the repository root, or bin/test)")


def count(n: int, word: str) -> str:
    """A count and its noun, singular for one: what every message says of steps, states, examples.

    Examples
    --------
    >>> count(1, "step"), count(12, "step"), count(1_094, "example")
    ('1 step', '12 steps', '1,094 examples')
    """
    return f"{n:,} {word}{'' if n == 1 else 's'}"
