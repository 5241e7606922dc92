"""The compiled search core: the hot modules, compiled from their own sources, used only while current.

The exhaustive engine spends its time in a few modules: the protocol's rule
table, its rule modules and its state functions (`stormcheck.model.fleet`,
`.fleet_states`, the `.rules_*` modules, `.judgement`), the
properties it evaluates on every step (`stormcheck.properties.core`,
`.protocol`) and the search loop itself (`stormcheck.checkers.bfs`). The
install compiles exactly these files with Cython (setup.py), unchanged: the
compiled module is the same statement of every rule, run without the
interpreter's dispatch, about 1.5 times as many states a second. Nothing is
written twice, and a machine without a C compiler runs the sources.

A compiled module sits beside its source and Python prefers it. So an edited
source would be shadowed by the old build, and the program would quietly run
rules that are no longer the ones written. The build therefore records the
SHA-256 of every source it compiled (`MANIFEST`, beside this file), and each
package's ``__init__`` calls `prefer_current` before any of its modules is
imported: a compiled module whose source has changed since, or that the
manifest does not vouch for, is passed over for its source. Setting
``STORMCHECK_PURE=1`` passes over every compiled module (to debug, profile
or measure the sources).

This module is read by setup.py too (with `runpy`), so it imports only the
standard library.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys

__all__ = ["COMPILED", "MANIFEST", "PURE_ENV", "prefer_current", "stale", "uncompiled", "summary", "status", "digest", "compiled_any"]

# Module name -> its source, relative to the repository root (setup.py compiles these).
COMPILED = {
    "stormcheck.model.fleet": "model/fleet.py",
    "stormcheck.model.fleet_states": "model/fleet_states.py",
    "stormcheck.model.rules_common": "model/rules_common.py",
    "stormcheck.model.rules_clients": "model/rules_clients.py",
    "stormcheck.model.rules_reapers": "model/rules_reapers.py",
    "stormcheck.model.rules_tuner": "model/rules_tuner.py",
    "stormcheck.model.rules_faults": "model/rules_faults.py",
    "stormcheck.model.rules_rollout": "model/rules_rollout.py",
    "stormcheck.model.judgement": "model/judgement.py",
    "stormcheck.properties.core": "properties/core.py",
    "stormcheck.properties.protocol": "properties/protocol.py",
    "stormcheck.checkers.bfs": "checkers/bfs.py",
}
MANIFEST = "_compiled.json"  # beside this file: {module name: SHA-256 of the source compiled}
PURE_ENV = "STORMCHECK_PURE"

# Module name -> why its compiled form was passed over (filled by `prefer_current`).
_PASSED_OVER: dict[str, str] = {}


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _manifest() -> dict:
    try:
        with open(os.path.join(os.path.dirname(__file__), MANIFEST), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _extension(folder: str, stem: str) -> str | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, stem + suffix)
        if os.path.exists(path):
            return path
    return None


class _Sources:
    """A finder that serves the listed modules from their sources (ahead of the compiled files)."""

    def __init__(self) -> None:
        self.sources: dict[str, str] = {}

    def find_spec(self, name, path=None, target=None):
        source = self.sources.get(name)
        return importlib.util.spec_from_file_location(name, source) if source else None


_FINDER = _Sources()


def _build(name: str, source: str, manifest: dict) -> str | None:
    """Why the compiled file of `name` beside `source` is not a build of the source as it is now; None if it is.

    What the manifest recorded decides; without a record, a compiled file
    left there is one the last build did not vouch for (it failed to compile
    it again), and no compiled file at all is no build to judge.
    """
    if name in manifest:
        if manifest[name] == digest(source):
            return None
        return f"{os.path.basename(source)} changed since it was compiled (bin/stormcheck, bin/test or pip install -e . " \
               "compiles it again)"
    if _extension(os.path.dirname(source), os.path.basename(source)[:-3]) is not None:
        return "the build recorded no digest of its source"
    return None


def prefer_current(package: str, path: list[str]) -> None:
    """Pass over every compiled module of `package` that is not a build of its current source.

    Called from the package's ``__init__``, before any of its modules is
    imported. A module with no compiled file is left alone (it is the source).
    """
    pure = os.environ.get(PURE_ENV, "") not in ("", "0")
    manifest = _manifest()
    for name in COMPILED:
        if name.rpartition(".")[0] != package:
            continue
        stem = name.rpartition(".")[2]
        source = os.path.join(path[0], stem + ".py")
        if _extension(path[0], stem) is None or not os.path.exists(source):
            continue
        why = f"{PURE_ENV} is set" if pure else _build(name, source, manifest)
        if why is not None:
            _PASSED_OVER[name] = why
            _FINDER.sources[name] = source
    if _FINDER.sources and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def stale(root: str) -> list[str]:
    """The modules to compile again (`root`: the repository's root).

    A module compiled from a source that has changed since, or whose compiled
    file the last build did not vouch for (it failed to compile it again).
    Empty where nothing was ever compiled (no C compiler): then there is
    nothing to bring up to date.
    """
    manifest = _manifest()
    return [name for name, source in COMPILED.items()
            if os.path.exists(os.path.join(root, source)) and _build(name, os.path.join(root, source), manifest)]


def uncompiled(root: str) -> list[str]:
    """The modules that run from source (`root`: the repository's root): not compiled, or not since their last edit."""
    manifest = _manifest()
    out = []
    for name, source in COMPILED.items():
        path = os.path.join(root, source)
        # Not a current build, or no compiled file at all (`_build` has nothing to judge then).
        if os.path.exists(path) and (_build(name, path, manifest) or _extension(
                os.path.dirname(path), os.path.basename(path)[:-3]) is None):
            out.append(name)
    return out


def summary() -> str:
    """How the search core runs, in words (``stormcheck --version``): compiled, from source, or partly.

    Asks the import system where each module would come from, without running any.
    """
    compiled = []
    for name in COMPILED:
        spec = importlib.util.find_spec(name)
        compiled.append(spec is not None and not (spec.origin or "").endswith(".py"))
    if all(compiled):
        return "search core compiled"
    reasons = sorted(set(_PASSED_OVER.values()))
    why = f": {'; '.join(reasons)}" if reasons else " (not compiled: no C compiler at install?)"
    if not any(compiled):
        return f"search core from source{why}"
    return f"search core partly compiled ({sum(compiled)} of {len(compiled)} modules){why}"


def compiled_any() -> bool:
    """Did the build compile any module (the manifest records what it compiled)?"""
    return bool(_manifest())


def status() -> dict[str, str]:
    """For each compiled module: "compiled", or "source" and why (imported modules only say for sure)."""
    out = {}
    for name in COMPILED:
        module = sys.modules.get(name)
        if module is not None:
            compiled = not (getattr(module, "__file__", "") or "").endswith(".py")
            out[name] = "compiled" if compiled else "source" + (f" ({_PASSED_OVER[name]})" if name in _PASSED_OVER
                                                                else " (not compiled)")
        else:
            out[name] = "not imported"
    return out
