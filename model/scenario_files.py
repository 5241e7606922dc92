"""Where scenarios come from: shipped presets and their folders, files, and the TOML reader.

A name is a preset first, then ``FOLDER/NAME`` of a shipped folder, then a
path (`_read`); the presets ship as package data, read through
importlib.resources so that a wheel or a zip works too. `_parse` turns what
tomllib cannot read (or should not try to) into a `ScenarioError` saying
where. Nothing here checks a value: that is the format's
(`model.scenario_format`); this module only finds and reads text.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from importlib import resources
from pathlib import Path

from .scenario_values import ScenarioError
from .toml_depth import MAX_NESTING, too_deep

__all__ = ["SHIPPED_FOLDERS", "shipped_names", "preset_names"]

_PRESET_PREFIX = "preset:"


def _preset_dir():
    # importlib.resources, not __file__: works from a wheel or a zip too.
    return resources.files(__package__).joinpath("scenarios")


# Sub-folders of the presets shipped with stormcheck, loaded as FOLDER/NAME:
# one scenario per stack of docs/protocol.md ("Other stacks"), and rollouts.
# proxies: a stack behind an intermediary that judges idleness; variants: a stack with one setting
# changed from its defaults, as incidents had it; storms: a fleet at full size whose [storm] table
# shows one mechanism of a metastable failure (`stormcheck storm`).
SHIPPED_FOLDERS = ("stacks", "rollouts", "proxies", "variants", "storms")


def shipped_names(folder: str) -> list[str]:
    """``FOLDER/NAME`` of each scenario shipped in `folder` (one of `SHIPPED_FOLDERS`), sorted.

    Examples
    --------
    >>> "stacks/phoenix" in shipped_names("stacks")
    True
    """
    return sorted(
        f"{folder}/{entry.name[: -len('.toml')]}"
        for entry in _preset_dir().joinpath(folder).iterdir()
        if entry.name.endswith(".toml") and not entry.name.startswith("_") and entry.is_file()
    )


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted. Files starting with ``_`` are not presets."""
    return sorted(
        entry.name[: -len(".toml")]
        for entry in _preset_dir().iterdir()
        if entry.name.endswith(".toml") and not entry.name.startswith("_") and entry.is_file()
    )


def _read(name_or_path: str) -> tuple[str, str]:
    """(text, source) of a preset name, ``preset:NAME`` or a file path."""
    name = name_or_path.removeprefix(_PRESET_PREFIX)
    presets = ", ".join(preset_names())
    bare = "/" not in name and "\\" not in name and not name.endswith(".toml")
    if bare and name in preset_names():
        return _preset_dir().joinpath(f"{name}.toml").read_text(encoding="utf-8"), _PRESET_PREFIX + name
    folder, _, rest = name.partition("/")
    shipped = folder in SHIPPED_FOLDERS and rest and not rest.endswith(".toml") and "/" not in rest
    if shipped and not Path(name_or_path).exists() and name in shipped_names(folder):
        return _preset_dir().joinpath(folder, f"{rest}.toml").read_text(encoding="utf-8"), _PRESET_PREFIX + name
    path = Path(name_or_path)
    if not path.exists():
        what = "is not a preset name, and no such file exists" if bare else "does not exist"
        every = preset_names() + [n for f in SHIPPED_FOLDERS for n in shipped_names(f)]
        close = _close_to(name, every)
        if close:
            raise ScenarioError(f"{name_or_path}: {what}; shipped scenarios: {', '.join(every)}. "
                                f"Did you mean {close}?")
        if folder in SHIPPED_FOLDERS:  # nothing like it: what that folder does hold
            raise ScenarioError(f"{name_or_path}: {what}; {folder}/ holds: {', '.join(shipped_names(folder))} "
                                f"('stormcheck list' names the other presets)")
        raise ScenarioError(f"{name_or_path}: {what}; shipped scenarios: {', '.join(every)}")
    if not path.is_file():
        raise ScenarioError(f"{name_or_path}: is not a file; give a .toml scenario file or one of: {presets}")
    try:
        return path.read_text(encoding="utf-8"), name_or_path
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{name_or_path}: not UTF-8 text, as TOML must be ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ScenarioError(f"{name_or_path}: cannot be read: {exc.strerror}") from None


def _close_to(name: str, every: list[str]) -> str | None:
    """The shipped scenario `name` most likely meant, or None when none is close.

    Names are compared without their folder: ``stacks/`` alone makes every
    stack look like ``stacks/nope``. One in the same folder is preferred; a
    name that is another folder's (``stack/grpc``) or that begins one
    (``rollouts/phoenix``) means it.
    """
    folder, _, rest = name.rpartition("/")
    own = [n for n in every if n.rpartition("/")[0] == folder]
    for pool in (own, every):
        leaves = {n.rpartition("/")[2]: n for n in reversed(pool)}  # the first listed wins a tie
        if rest in leaves:  # stack/grpc: the right name in another folder
            return leaves[rest]
        begun = sorted(n for leaf, n in leaves.items() if leaf.startswith(rest + "-"))
        if begun:
            return begun[0]
        close = difflib.get_close_matches(rest, list(leaves), n=1, cutoff=0.75)
        if close:
            return leaves[close[0]]
    return None


_HUGE_INT = re.compile(r"^\s*([^=\n]+?)\s*=\s*[-+]?[0-9_]{4301,}", re.MULTILINE)


def _parse(text: str, source: str) -> dict:
    """The TOML `text`; what tomllib cannot read becomes a `ScenarioError` saying where."""
    if (deep := too_deep(text)) is not None:  # before tomllib, whose time grows faster than the text
        line, depth = deep
        raise ScenarioError(f"{source}: line {line}: tables, keys or lists nested {depth} deep; at most "
                            f"{MAX_NESTING} levels are read, and no scenario key nests more than 3")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: tables or lists nested too deeply to read; no scenario key "
                            "takes more than a list of numbers") from None
    except ValueError as exc:  # Python's limit on the digits of an integer
        huge = _HUGE_INT.search(text)
        if huge is None:
            raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
        line = text.count("\n", 0, huge.start()) + 1
        raise ScenarioError(f"{source}: line {line}: {huge.group(1)} = a number of more than 4300 digits; "
                            "no scenario value is anywhere near that large") from None
