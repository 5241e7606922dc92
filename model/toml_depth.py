"""How deeply a TOML text nests, measured before it is parsed.

A scenario nests at most three levels (``[[rollout.phases]]`` holding a
list), yet TOML lets a text nest without end, and every way costs more than
the text's length: tomllib recurses on inline tables and arrays, and a chain
of table headers ``[a]``, ``[a.a]``, ``[a.a.a]``... grows the text with the
square of its depth (3,000 such headers: 9 MB, 28 s in tomllib). One cheap
pass over the text finds the first place where headers, dotted keys,
arrays or inline tables together nest deeper than a limit, so such a text is
refused before tomllib sees it. Strings and comments are skipped; what is
not valid TOML is left to tomllib to report.
"""

from __future__ import annotations

import re

__all__ = ["MAX_NESTING", "too_deep"]

MAX_NESTING = 20  # far above any scenario key, far below where reading gets slow

_SEGMENT = r'(?:[A-Za-z0-9_-]++|"(?:[^"\\\n]|\\.)*+"|\'[^\'\n]*+\')'  # possessive: no backtracking
_TOKEN = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\''  # multi-line strings
    rf"|(?P<dotted>(?<![A-Za-z0-9_-]){_SEGMENT}(?:[ \t]*\.[ \t]*{_SEGMENT})+)"  # a dotted key (or a float: one level, harmless)
    r'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*'  # strings, comments
    r"|[\[\]{}]"
)
_SEGMENTS = re.compile(_SEGMENT)


def too_deep(text: str, limit: int = MAX_NESTING) -> tuple[int, int] | None:
    """The (line, depth) where `text` first nests deeper than `limit`, else None.

    A table header or an array opens one level, an inline table one, and each
    dot of a dotted key one more (``[a.b.c]`` is three deep).

    Examples
    --------
    >>> too_deep('[scenario]\\nname = "x"\\n[[rollout.phases]]\\nside = "clients"\\n')
    >>> too_deep("[a]\\n[a.a]\\n[a.a.a]\\n", limit=2)
    (3, 3)
    >>> too_deep('x = "[[[[" # {{{{\\n', limit=1)
    """
    if sum(map(text.count, "[{.")) <= limit:  # every level needs one of these: a long list of numbers has none
        return None
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            here = depth
        elif token in "]}":
            depth = max(depth - 1, 0)
            continue
        elif match.group("dotted"):
            here = depth + len(_SEGMENTS.findall(token)) - 1
        else:
            continue
        if here > limit:
            return text.count("\n", 0, match.start()) + 1, here
    return None
