"""The Informal Trace Format (ITF, Apalache ADR-015): values and whole traces.

Model-agnostic: :func:`to_itf` / :func:`from_itf` map plain Python values to
ITF expressions and back, and :class:`Trace` reads and writes ``.itf.json``
files.  Output is canonical (sets and maps sorted), so equal traces give
byte-identical files.

Integers are written as ``{"#bigint": "..."}``, every one of them: ADR-015
as revised on 2023-09-14 no longer allows JSON numbers for integers (one
form makes custom readers simpler). Traces written before that, with plain
numbers, are still read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import re
import secrets
from collections.abc import Mapping, Set
from typing import Any

from stormcheck import signals

__all__ = ["Trace", "Unserializable", "from_itf", "plain_integers", "to_itf"]

_BIGINT = re.compile(r"-?[0-9]+")  # ADR-015 form; int() alone would allow "1_0", " 7"
_TAGS = ("#bigint", "#tup", "#set", "#map", "#unserializable")


@dataclasses.dataclass(frozen=True)
class Unserializable:
    """An ITF ``{"#unserializable": text}`` value, e.g. an infinite set from Apalache."""

    text: str


def _canon(obj: Any) -> str:
    # One fixed text per JSON value: set elements and map keys are sorted by
    # it, so equal Python values give the same output whatever their order.
    return json.dumps(obj, separators=(",", ":"))


def to_itf(value: Any) -> Any:
    """Encode a Python value as a JSON-able ITF expression.

    ``bool``/``str`` stay as they are; ``int`` is ``{"#bigint": "..."}``
    (ADR-015 since its 2023-09-14 revision: no JSON numbers); ``list`` is a
    sequence; ``tuple`` is ``#tup``; a NamedTuple or dataclass instance is a
    record (fields in order); ``set``/``frozenset`` is ``#set``; ``dict`` is
    ``#map``; an ``Enum`` is its value; :class:`Unserializable` is
    ``#unserializable``.  Nesting is arbitrary.

    Parameters
    ----------
    value : Any
        The value to encode.

    Returns
    -------
    Any
        Nested ``dict``/``list``/``str``/``int``/``bool``.

    Raises
    ------
    TypeError
        For other types, e.g. ``float`` or ``None`` (the model is integer-only).
    ValueError
        If two keys of a ``dict`` encode alike (e.g. an ``Enum`` and its value).
    """
    return _enc(value, "$")


def _enc(v: Any, path: str) -> Any:
    # Order matters: Enum before int/str (IntEnum, StrEnum), bool before int
    # (bool is an int subclass), NamedTuple before tuple.
    if isinstance(v, enum.Enum):
        return _enc(v.value, path)
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return {"#bigint": str(int(v))}
    if isinstance(v, Unserializable):
        return {"#unserializable": v.text}
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return {f: _enc(getattr(v, f), f"{path}.{f}") for f in v._fields}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        names = [f.name for f in dataclasses.fields(v)]
        return {n: _enc(getattr(v, n), f"{path}.{n}") for n in names}
    if isinstance(v, (list, tuple)):
        items = [_enc(x, f"{path}[{i}]") for i, x in enumerate(v)]
        return items if isinstance(v, list) else {"#tup": items}
    if isinstance(v, Mapping):
        pairs: dict[str, list[Any]] = {}
        for k, x in v.items():
            key = _enc(k, f"{path}.keys()")
            if (text := _canon(key)) in pairs:  # writing both would lose one
                raise ValueError(f"at {path}: two map keys both encode to {text}")
            pairs[text] = [key, _enc(x, f"{path}[{k!r}]")]
        return {"#map": [pairs[t] for t in sorted(pairs)]}
    if isinstance(v, Set):
        # Keyed by text, which also merges elements that encode alike.
        elems = {_canon(e): e for e in (_enc(x, f"{path}{{{i}}}") for i, x in enumerate(v))}
        return {"#set": [elems[t] for t in sorted(elems)]}
    hint = " (the model is integer-only)" if isinstance(v, float) else ""
    raise TypeError(f"cannot encode {type(v).__name__} at {path} to ITF{hint}")


def from_itf(obj: Any) -> Any:
    """Decode a JSON-parsed ITF expression to Python.

    Numbers and ``#bigint`` give ``int``, ``#tup`` ``tuple``, ``#set``
    ``frozenset``, ``#map`` ``dict``, sequences ``list``.  Records give a plain
    ``dict``: lossy, as the file does not name the record type.

    Parameters
    ----------
    obj : Any
        The expression, as returned by ``json.load``.

    Returns
    -------
    Any
        The Python value.

    Raises
    ------
    ValueError
        For malformed ITF (floats, ``null``, unknown ``#`` forms, duplicate map
        keys, lists or records as set elements or map keys), naming the path.
    """
    return _dec(obj, "$")


def plain_integers(obj: Any) -> Any:
    """`obj` (parsed ITF JSON) with every ``{"#bigint": "..."}`` replaced by the integer.

    For readers that walk a trace's JSON themselves and want numbers where
    older traces had them; every other form is left as it is.

    Examples
    --------
    >>> plain_integers({"clients": [{"server": {"#bigint": "2"}}], "up": {"#set": [{"#bigint": "-1"}]}})
    {'clients': [{'server': 2}], 'up': {'#set': [-1]}}
    """
    if isinstance(obj, list):
        return [plain_integers(x) for x in obj]
    if isinstance(obj, dict):
        body = obj.get("#bigint")
        if len(obj) == 1 and isinstance(body, str) and _BIGINT.fullmatch(body):
            return int(body)
        return {k: plain_integers(x) for k, x in obj.items()}
    return obj


def _key(x: Any, path: str) -> Any:
    # Records decode to dict and sequences to list, which Python cannot hash:
    # a clear error beats silently turning them into some other type.
    try:
        hash(x)
    except TypeError:
        what = {list: "a list", dict: "a record"}.get(type(x), "a tuple holding a list or record")
        raise ValueError(f"at {path}: {what} cannot be a set element or map key") from None
    return x


def _dec(o: Any, path: str) -> Any:
    if isinstance(o, (bool, str, int)):
        return o  # also unsafe-range JSON numbers: Python parses them exactly
    if isinstance(o, list):
        return [_dec(x, f"{path}[{i}]") for i, x in enumerate(o)]
    if not isinstance(o, dict):
        raise ValueError(f"at {path}: {type(o).__name__} is not an ITF value ({o!r})")
    tags = [k for k in o if isinstance(k, str) and k.startswith("#")]
    if not tags:  # a record: ADR-015 field names never start with "#"
        return {k: _dec(x, f"{path}.{k}") for k, x in o.items()}
    if len(o) != 1:
        raise ValueError(f"at {path}: an object with {tags[0]!r} must have no other keys")
    ((tag, body),) = o.items()
    if tag == "#bigint" and isinstance(body, str) and _BIGINT.fullmatch(body):
        return int(body)
    if tag == "#unserializable" and isinstance(body, str):
        return Unserializable(body)
    if tag == "#tup" and isinstance(body, list):
        return tuple(_dec(x, f"{path}[{i}]") for i, x in enumerate(body))
    if tag == "#set" and isinstance(body, list):
        return frozenset(_key(_dec(x, f"{path}[{i}]"), f"{path}[{i}]") for i, x in enumerate(body))
    if tag == "#map" and isinstance(body, list):
        out: dict[Any, Any] = {}
        for i, pair in enumerate(body):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ValueError(f"at {path}[{i}]: a #map entry must be a [key, value] array")
            if (key := _key(_dec(pair[0], f"{path}[{i}][0]"), f"{path}[{i}][0]")) in out:
                raise ValueError(f"at {path}[{i}]: duplicate map key {key!r}")
            out[key] = _dec(pair[1], f"{path}[{i}][1]")
        return out
    what = "malformed" if tag in _TAGS else "unknown ITF form"
    raise ValueError(f"at {path}: {what} {tag!r}: {_canon(body)[:80]}")


def _names(value: Any, what: str) -> tuple[str, ...]:
    # "#" names would collide with a state's "#meta"; duplicates are ambiguous.
    if not isinstance(value, (list, tuple)) or not all(isinstance(n, str) for n in value):
        raise ValueError(f"{what} must be a list of strings, got {value!r}")
    for n in value:
        if n.startswith("#") or value.count(n) > 1:
            raise ValueError(f"{what} has a bad or duplicate name {n!r}")
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class Trace:
    """An ITF trace: a finite run, or a lasso if ``loop`` is set.

    Parameters
    ----------
    meta : dict
        Free-form JSON object, the trace's ``"#meta"``.
    vars : tuple of str
        Variable names; every state binds each of them.
    states : tuple of dict
        Per state, name -> Python value (as :func:`from_itf` decodes it), plus
        an optional ``"#meta"`` key holding raw JSON.
    params : tuple of str, optional
        Parameter names (like TLA+ ``CONSTANTS``), bound in the first state.
    loop : int or None, optional
        Index of the state starting the loop, which ends at the last state.

    Raises
    ------
    ValueError
        If a state lacks or has an extra name, or ``loop`` is out of range.
    """

    meta: dict
    vars: tuple[str, ...]
    states: tuple[dict, ...]
    params: tuple[str, ...] = ()
    loop: int | None = None

    def __post_init__(self) -> None:
        # Validate here, not only in from_json, so no invalid Trace can exist.
        if not isinstance(self.meta, dict):
            raise ValueError(f"#meta must be an object, got {self.meta!r}")
        if not isinstance(self.states, (list, tuple)):
            raise ValueError(f"states must be a list, got {type(self.states).__name__}")
        # Lists are accepted for convenience, but stored as tuples (frozen class).
        object.__setattr__(self, "vars", _names(self.vars, "vars"))
        object.__setattr__(self, "params", _names(self.params, "params"))
        object.__setattr__(self, "states", tuple(self.states))
        if clash := set(self.vars) & set(self.params):
            raise ValueError(f"names {sorted(clash)} are both vars and params")
        for i, s in enumerate(self.states):
            if not isinstance(s, Mapping):
                raise ValueError(f"state {i} must be an object, got {type(s).__name__}")
            for name in self.vars + (self.params if i == 0 else ()):
                if name not in s:
                    kind = "var" if name in self.vars else "param"
                    raise ValueError(f"state {i} lacks {kind} {name!r}")
            if extra := sorted(set(s) - {*self.vars, *self.params, "#meta"}):
                raise ValueError(f"state {i} has {extra[0]!r}, which is not in vars or params")
            if not isinstance(s.get("#meta", {}), dict):
                raise ValueError(f"state {i}: #meta must be an object")
        n, loop = len(self.states), self.loop
        if loop is not None and (isinstance(loop, bool) or not isinstance(loop, int)):
            raise ValueError(f"loop must be an integer index, got {loop!r}")
        if loop is not None and not 0 <= loop < n:
            raise ValueError(f"loop index {loop} is out of range for {n} states")

    def to_json(self) -> dict[str, Any]:
        """Return the ITF JSON object, keys in ADR-015 order (``params``/``loop`` if set)."""
        names = ("#meta", *self.params, *self.vars)  # a fixed order, whatever the dict's
        states = [
            {n: s[n] if n == "#meta" else _enc(s[n], f"states[{i}].{n}") for n in names if n in s}
            for i, s in enumerate(self.states)
        ]
        obj: dict[str, Any] = {"#meta": self.meta}
        if self.params:  # optional in ADR-015: omitted rather than written as []
            obj["params"] = list(self.params)
        obj |= {"vars": list(self.vars), "states": states}
        return obj if self.loop is None else obj | {"loop": self.loop}

    @classmethod
    def from_json(cls, obj: Any) -> Trace:
        """Validate a ``json.load``-ed ITF object and decode it into a Trace.

        Parameters
        ----------
        obj : Any
            The parsed ITF trace object.

        Raises
        ------
        ValueError
            Naming what is wrong, e.g. ``state 3 lacks var 'clients'``.
        """
        if not isinstance(obj, dict):
            raise ValueError(f"a trace must be a JSON object, got {type(obj).__name__}")
        if extra := sorted(set(obj) - {"#meta", "params", "vars", "states", "loop"}):
            raise ValueError(f"unknown trace field {extra[0]!r}")
        if missing := [f for f in ("vars", "states") if f not in obj]:
            raise ValueError(f"the trace lacks the field {missing[0]!r}")
        states = obj["states"]
        if isinstance(states, list):  # anything else is reported by __post_init__
            # A state's "#meta" stays raw JSON; everything else is an ITF expression.
            states = [
                {k: v if k == "#meta" else _dec(v, f"states[{i}].{k}") for k, v in s.items()}
                if isinstance(s, dict) else s
                for i, s in enumerate(states)
            ]
        return cls(obj.get("#meta", {}), obj["vars"], states, obj.get("params", ()), obj.get("loop"))

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the trace to ``path`` (by convention ``*.itf.json``) atomically.

        Readers see the old file or the new one, never a half-written one.

        Parameters
        ----------
        path : str or os.PathLike
            The destination; its directory must exist.
        """
        # Encode first, so an unencodable value fails before touching the disk.
        data = (json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n").encode()
        folder, name = os.path.split(os.path.abspath(path))
        # Same directory, so os.replace is an atomic rename on one filesystem;
        # os.open with O_EXCL (not mkstemp, which forces 0600) lets umask decide.
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            # A signal landing between creating the file and the try would
            # leave it behind: held back until the fd is in hand.
            with signals.deferred():
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # content on disk before the rename publishes it
            os.replace(tmp, path)
        except BaseException:  # incl. KeyboardInterrupt: never leave the temp file
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Trace:
        """Read and validate an ITF file.

        Parameters
        ----------
        path : str or os.PathLike
            The file to read.

        Raises
        ------
        OSError
            If the file cannot be opened.
        ValueError
            If it is not JSON or not a valid trace; the message starts with the path.
        """
        where = os.fspath(path)
        with open(path, encoding="utf-8") as f:
            try:
                return cls.from_json(json.load(f))
            except RecursionError:
                raise ValueError(f"{where}: not a trace: its JSON is nested too deeply to read") from None
            except json.JSONDecodeError as e:
                if where.endswith(".timeline.txt"):
                    trace = where.removesuffix(".timeline.txt") + ".itf.json"
                    raise ValueError(f"{where}: a timeline is for reading; replay the ITF trace written "
                                     f"beside it: {trace}") from None
                raise ValueError(f"{where}: not JSON: {e}") from e
            except ValueError as e:  # incl. UnicodeDecodeError
                raise ValueError(f"{where}: {e}") from e
