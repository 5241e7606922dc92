"""stormcheck package."""

__all__ = ["one_name"]


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
