"""The cheap commands load no heavy library.

Plotting (matplotlib), Z3, Hypothesis, networkx, NumPy and Dask take longer
to import than ``stormcheck list`` or the 2015 search take to run, so each is
imported by the code that uses it, when it runs. These tests run commands in
a fresh interpreter and name every heavy module it loaded: an eager import
added anywhere on the way (a command module, the checkers package, the model)
fails here, whatever the machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("matplotlib", "z3", "hypothesis", "networkx", "numpy", "distributed", "dask")
# Our own: the stacks' conformance harnesses (every stack's server and client
# modules), and the modules of the commands that `check`, `replay` and `list`
# do not run (the report, the storm simulator and its front end, the sweep,
# the rollout planner): `stormcheck.cli` builds a named command's parser alone.
HEAVY_OWN = ("stormcheck.conformance.stacks", "stormcheck.report", "stormcheck.storm_cmd", "stormcheck.model.storm",
             "stormcheck.sweep_cmd", "stormcheck.conform_cmd")
# What a cheap command needs after all: `list stacks` says which stacks run on their real library.
USES = {"list-stacks": ("stormcheck.conformance.stacks",)}

# Runs the command line in-process and, at exit (``--version`` exits from inside
# argparse), writes the heavy top-level packages loaded by then, as JSON, to
# the file named by the first argument.
_PROBE = f"""
import atexit, json, sys

def _write(path=sys.argv[1]):
    with open(path, "w") as f:
        json.dump(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}) | set(sys.modules) & set({HEAVY_OWN!r})), f)

atexit.register(_write)
argv = sys.argv[2:]
if argv != ["-"]:
    from stormcheck.__main__ import main
    sys.exit(main(argv))
import stormcheck.cli
"""

COUNTEREXAMPLE = Path(__file__).resolve().parent.parent / "counterexamples" / "gitter-2015.per-server.no_valid_reap.itf.json"

# (argv, exit code). argv None: only ``import stormcheck.cli``.
CHEAP = {
    "import": (None, 0),
    "bare": ([], 1),  # the README's main job: `stormcheck` alone checks gitter-2015
    "list": (["list"], 0),
    "list-stacks": (["list", "stacks"], 0),
    "check": (["check", "gitter-2015", "--out", "{tmp}/out"], 1),
    "check-json": (["check", "gitter-2015", "--out", "{tmp}/out-json", "--json"], 1),
    "replay": (["replay", str(COUNTEREXAMPLE), "--timeline"], 0),
    "version": (["--version"], 0),
}


def _start(tmp_path: Path, name: str, argv: list[str] | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    words = ["-"] if argv is None else [w.format(tmp=tmp_path) for w in argv]
    return subprocess.Popen([sys.executable, "-c", _PROBE, str(tmp_path / f"{name}.json"), *words], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _loaded(tmp_path: Path, name: str, proc: subprocess.Popen) -> tuple[int, list[str], str]:
    _, err = proc.communicate(timeout=120)
    path = tmp_path / f"{name}.json"
    assert path.is_file(), f"{name}: the probe wrote nothing: {err}"
    return proc.returncode, json.loads(path.read_text()), err


def test_cheap_commands_import_no_heavy_library(tmp_path):
    # Each process costs a few tenths of a second: they run side by side.
    procs = {name: _start(tmp_path, name, argv) for name, (argv, _) in CHEAP.items()}
    for name, proc in procs.items():
        rc, loaded, err = _loaded(tmp_path, name, proc)
        assert rc == CHEAP[name][1], (name, err)
        what = f"stormcheck {' '.join(CHEAP[name][0])}" if CHEAP[name][0] is not None else "import stormcheck.cli"
        loaded = [m for m in loaded if m not in USES.get(name, ())]
        assert loaded == [], f"{what} imported {', '.join(loaded)}: import it inside the function that uses it"


@pytest.mark.parametrize("argv, library, code", [
    (["check", "gitter-2015", "--property", "storm_subsides", "--quiet"], "networkx", 1),  # the lasso search
    (["storm", "gitter-2015", "--design", "off", "--clients", "50", "--horizon", "2000", "--no-lasso", "--no-plot", "--quiet"],
     "stormcheck.model.storm", 0),
])
def test_the_probe_sees_a_library_a_command_uses(tmp_path, argv, library, code):
    # Without this, a probe that saw no module at all would pass the test above.
    rc, loaded, err = _loaded(tmp_path, "uses", _start(tmp_path, "uses", [*argv, "--out", "{tmp}/out"]))
    assert rc == code, err
    assert library in loaded
