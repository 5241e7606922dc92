"""The compiled search core (stormcheck/_compiled.py): the same answers as the sources, and never stale.

The install compiles the hot modules with Cython. These tests show that a
compiled module runs only while it is a build of its current source (an
edited source is run instead, and so is every source under
STORMCHECK_PURE=1), and that compiled and source searches give the same
verdicts, state counts and runs. Under CI (CI=true) the compiled core must be
there; elsewhere the comparison skips, naming what to install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from stormcheck import _compiled

_PROBE = textwrap.dedent("""
    import sys
    import stormcheck._compiled as c
    c.COMPILED = {"fakepkg.mod": "fakepkg/mod.py"}
    c._manifest = lambda: MANIFEST
    sys.path.insert(0, ROOT)
    try:
        import fakepkg.mod
    except ImportError as e:
        print("compiled file loaded:", e)
    else:
        print("source ran:", fakepkg.mod.WHERE, c._PASSED_OVER.get("fakepkg.mod", ""))
""")


def _fake_package(tmp_path) -> str:
    """A package whose module has a source and a "compiled" file beside it (not a real extension:
    Python's loader refuses it, which shows when the compiled file is the one Python picks)."""
    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from stormcheck._compiled import prefer_current\n"
                                     "prefer_current(__name__, __path__)\n")
    (pkg / "mod.py").write_text("WHERE = 'source'\n")
    from importlib.machinery import EXTENSION_SUFFIXES

    (pkg / ("mod" + EXTENSION_SUFFIXES[0])).write_bytes(b"not an extension module")
    return str(pkg / "mod.py")


def _probe(tmp_path, manifest: dict, env: dict | None = None) -> str:
    code = f"ROOT = {str(tmp_path)!r}\nMANIFEST = {manifest!r}\n" + _PROBE
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, _compiled.PURE_ENV: "", **(env or {})})
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_a_compiled_module_whose_source_changed_is_passed_over_for_the_source(tmp_path):
    source = _fake_package(tmp_path)
    current = _compiled.digest(source)
    # Control: the manifest vouches for this source, so Python picks the compiled file.
    assert "compiled file loaded" in _probe(tmp_path, {"fakepkg.mod": current})
    # The source changed since the build: the source runs, and the reason is kept.
    out = _probe(tmp_path, {"fakepkg.mod": "0" * 64})
    assert out.startswith("source ran: source") and "mod.py changed since it was compiled" in out
    # A compiled file the build never recorded is not trusted either.
    assert "recorded no digest" in _probe(tmp_path, {})
    # STORMCHECK_PURE=1 runs the source even where the build is current.
    assert "STORMCHECK_PURE is set" in _probe(tmp_path, {"fakepkg.mod": current}, {_compiled.PURE_ENV: "1"})


def test_stale_names_the_modules_to_compile_again(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "fleet.py").write_text("# the rules\n")
    digest = _compiled.digest(str(tmp_path / "model" / "fleet.py"))
    monkeypatch.setattr(_compiled, "_manifest", lambda: {"stormcheck.model.fleet": digest})
    assert _compiled.stale(str(tmp_path)) == []
    (tmp_path / "model" / "fleet.py").write_text("# the rules, edited\n")
    assert _compiled.stale(str(tmp_path)) == ["stormcheck.model.fleet"]
    assert _compiled.compiled_any()
    # Nothing compiled (no C compiler): nothing to bring up to date, and the install says so.
    monkeypatch.setattr(_compiled, "_manifest", lambda: {})
    assert _compiled.stale(str(tmp_path)) == []
    assert not _compiled.compiled_any()
    assert "stormcheck.model.fleet" in _compiled.uncompiled(str(tmp_path))
    # A compiled file left by an earlier build that the last one did not vouch for (it failed to
    # compile the module again): compiled again at the next chance, not left to run as source for good.
    from importlib.machinery import EXTENSION_SUFFIXES

    (tmp_path / "model" / ("fleet" + EXTENSION_SUFFIXES[0])).write_bytes(b"an earlier build")
    assert _compiled.stale(str(tmp_path)) == ["stormcheck.model.fleet"]
    monkeypatch.setattr(_compiled, "_manifest",
                        lambda: {"stormcheck.model.fleet": _compiled.digest(str(tmp_path / "model" / "fleet.py"))})
    assert _compiled.stale(str(tmp_path)) == [] and "stormcheck.model.fleet" not in _compiled.uncompiled(str(tmp_path))


def test_version_says_how_the_search_core_runs():
    run = subprocess.run([sys.executable, "-m", "stormcheck", "--version"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, _compiled.PURE_ENV: "1"})
    assert run.returncode == 0 and "search core from source: STORMCHECK_PURE is set" in " ".join(run.stdout.split())


def _status() -> dict:
    code = ("import json, stormcheck.checkers, stormcheck.properties.protocol, stormcheck._compiled as c;"
            "print(json.dumps(c.status()))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, _compiled.PURE_ENV: ""})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _require_compiled() -> dict:
    status = _status()
    missing = {name: how for name, how in status.items() if how != "compiled"}
    if missing:
        message = (f"the search core is not compiled ({missing}): install a C compiler (gcc) and "
                   "run pip install -e . (bin/test does)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return status


# Presets, stacks and designs whose searches cover every rule kind of the table between them.
_CASES = [
    ["gitter-2015"],
    ["gitter-2015", "--design", "per-session"],
    ["gitter-2015", "--design", "fleet-wide-staged"],
    ["stacks/socketio-4"],
    ["stacks/faye"],
    ["stacks/grpc"],
    ["proxies/nginx-websockets-ping-90"],
    ["rollouts/faye-timeout-101"],
]


def _check(args: list[str], pure: bool, out) -> dict:
    run = subprocess.run([sys.executable, "-m", "stormcheck", "check", *args, "--json", "--out", str(out)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, _compiled.PURE_ENV: "1" if pure else ""})
    assert run.returncode in (0, 1, 3), run.stderr
    result = json.loads(run.stdout)
    result["stats"].pop("seconds", None)
    result["stats"].pop("states_per_second", None)
    for name, prop in result["properties"].items():
        for kind in ("trace", "timeline"):
            if prop.get(kind):  # the file's text, not where it was written
                prop[kind] = (out / os.path.basename(prop[kind])).read_text()
    return result


@pytest.mark.parametrize("args", _CASES, ids=lambda a: " ".join(a))
def test_compiled_and_source_searches_agree(args, tmp_path):
    _require_compiled()
    compiled = _check(args, False, tmp_path / "compiled")
    source = _check(args, True, tmp_path / "source")
    assert compiled["stats"]["states"] > 0
    assert compiled == source
