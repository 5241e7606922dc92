"""Packaging checks: the wheel must install exactly one import package,
`stormcheck`, with the flat source folders remapped under it (see
[tool.setuptools] in pyproject.toml) and the scenario files as package data.

The wheel is built once per module (~10-30s, build isolation fetches
setuptools) from a *copy* of the source tree, so that no build/ or egg-info
litter lands in the working tree, stale build/lib files cannot sneak into the
wheel, and parallel runs do not collide.
"""

import shutil
import os
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Source folder -> where its files must appear inside the wheel.
FOLDERS = {
    "stormcheck": "stormcheck",
    "model": "stormcheck/model",
    "properties": "stormcheck/properties",
    "checkers": "stormcheck/checkers",
    "traces": "stormcheck/traces",
    "conformance": "stormcheck/conformance",
}
ROOT_ONLY = {".git", ".venv", "build", "dist", "out"}  # skipped at the root only
ANYWHERE = shutil.ignore_patterns("__pycache__", "*.egg-info", ".hypothesis", ".pytest_cache", "node_modules")


def _ignore(dirname, names):
    skip = set(ANYWHERE(dirname, names))
    if Path(dirname) == ROOT:
        skip |= ROOT_ONLY & set(names)
    return skip


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """Snapshot of the source tree.  Tests compare the wheel against this
    copy, not the live tree, which others may be editing meanwhile."""
    src = tmp_path_factory.mktemp("wheel") / "src"
    shutil.copytree(ROOT, src, ignore=_ignore)
    # A probe file, so the package-data rule is tested even while the real
    # scenarios/ folder is still empty.
    (src / "model/scenarios").mkdir(parents=True, exist_ok=True)
    (src / "model/scenarios/_packaging_probe.toml").write_text("# probe\n")
    return src


@pytest.fixture(scope="module")
def wheel(src):
    """A wheel freshly built from the snapshot, opened."""
    out = src.parent / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=600,
        # The layout is the question here: the search core is not compiled (tests/test_compiled.py covers it).
        env={**os.environ, "STORMCHECK_COMPILE": "0"},
    )
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    (whl,) = out.glob("stormcheck-*.whl")
    with zipfile.ZipFile(whl) as zf:
        yield zf


@pytest.fixture(scope="module")
def wheel_names(wheel):
    return wheel.namelist()


def _is_dist_info(name):
    return name.split("/", 1)[0].endswith(".dist-info")


def test_only_stormcheck_is_top_level(wheel_names):
    tops = {PurePosixPath(n).parts[0] for n in wheel_names if not _is_dist_info(n)}
    assert tops == {"stormcheck"}


def test_top_level_txt_lists_only_stormcheck(wheel, wheel_names):
    files = [n for n in wheel_names if _is_dist_info(n) and n.endswith("/top_level.txt")]
    if not files:
        pytest.skip("wheel has no top_level.txt (newer setuptools may omit it)")
    (name,) = files
    assert wheel.read(name).decode().split() == ["stormcheck"]


def test_scenarios_are_package_data(wheel_names, src):
    # Every shipped folder too (stacks, variants, proxies, rollouts, storms): a preset missing from the wheel
    # is a name that works from a checkout and not once installed.
    root = src / "model/scenarios"
    want = {f"stormcheck/model/scenarios/{p.relative_to(root).as_posix()}" for p in root.rglob("*.toml")}
    have = {n for n in wheel_names if n.startswith("stormcheck/model/scenarios/")}
    assert "stormcheck/model/scenarios/_packaging_probe.toml" in want
    assert want <= have, f"missing from wheel: {sorted(want - have)}"


def test_every_source_module_is_packaged(wheel_names, src):
    """Catches a new sub-package folder that pyproject.toml does not list."""
    names = set(wheel_names)
    missing = [
        f"{folder}/{rel}"
        for folder, dest in FOLDERS.items()
        for rel in (p.relative_to(src / folder).as_posix() for p in (src / folder).rglob("*.py"))
        if f"{dest}/{rel}" not in names
    ]
    assert not missing, f"not in wheel (add the sub-package to pyproject.toml?): {missing}"


@pytest.mark.parametrize("folder", ["model", "properties", "checkers", "traces", "conformance"])
def test_a_source_folder_has_one_import_name(folder):
    """From the repository root, `import model` would make a second copy of every module: refused."""
    bare = subprocess.run([sys.executable, "-c", f"import {folder}"], cwd=ROOT, capture_output=True, text=True)
    assert bare.returncode == 1
    assert f"ImportError: import stormcheck.{folder}, not {folder}:" in bare.stderr
    proper = subprocess.run([sys.executable, "-c", f"import stormcheck.{folder}"], cwd=ROOT, capture_output=True,
                            text=True)
    assert proper.returncode == 0, proper.stderr


def test_the_wheel_carries_the_version_the_program_prints(wheel, wheel_names):
    # One statement of the version (stormcheck.__version__): the wheel's metadata reads it, and
    # `stormcheck --version`, traces and reports print it without looking the metadata up.
    from stormcheck import __version__

    (name,) = [n for n in wheel_names if _is_dist_info(n) and n.endswith("/METADATA")]
    fields = dict(line.split(": ", 1) for line in wheel.read(name).decode().splitlines() if ": " in line)
    assert fields["Version"] == __version__
    assert name.split("/")[0] == f"stormcheck-{__version__}.dist-info"
