"""Compiles the search core (stormcheck/_compiled.py says which modules and why); pyproject.toml says the rest.

Each module is compiled by Cython from its own source, unchanged. A machine
without a C compiler (or where a module fails to compile) gets a warning and
runs that source: the build never fails for want of the compiled core. The
digest of every source compiled goes into the manifest that
`stormcheck._compiled.prefer_current` reads, so a compiled module whose
source was edited later is never the one that runs.
"""

import json
import os
import runpy

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
_C = runpy.run_path(os.path.join(HERE, "stormcheck", "_compiled.py"))


def _extensions():
    if os.environ.get("STORMCHECK_COMPILE") == "0":  # a build for its layout alone (tests/test_packaging.py)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:  # the build requirements name Cython; a build without it runs the sources
        return []
    from setuptools import Extension

    modules = [Extension(name, [source]) for name, source in _C["COMPILED"].items()]
    # annotation_typing=False: annotations stay documentation, as in the sources (Cython would
    # otherwise enforce some of them at run time, which Python does not).
    return cythonize(modules, build_dir="build/cython", quiet=True, nthreads=os.cpu_count() or 1,
                     compiler_directives={"language_level": 3, "annotation_typing": False})


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing, and records what it compiled."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1  # one compiler per CPU: the modules are independent

    def run(self):
        self._built = {}
        try:
            super().run()
        except Exception as e:  # no compiler at all
            self.warn(f"the search core was not compiled ({e}); stormcheck runs its sources")
            for ext in self.extensions:
                self._drop_old_build(ext)
        self._write_manifest()

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:
            self.warn(f"{ext.name} was not compiled ({e}); stormcheck runs its source")
            self._drop_old_build(ext)
            return
        self._built[ext.name] = _C["digest"](os.path.join(HERE, _C["COMPILED"][ext.name]))

    def _drop_old_build(self, ext):
        """Remove an earlier build of `ext` beside its source (an editable install's).

        The manifest no longer vouches for it, so it would be passed over anyway; removed, nothing
        asks for it to be compiled again (bin/_bootstrap.sh) until the next install.
        """
        if not (self.inplace or getattr(self, "editable_mode", False)):
            return
        source = os.path.join(HERE, _C["COMPILED"][ext.name])
        old = os.path.join(os.path.dirname(source), os.path.basename(self.get_ext_filename(ext.name)))
        if os.path.exists(old):
            os.remove(old)

    def _write_manifest(self):
        # Beside stormcheck/__init__: in the source tree for an editable install, in the wheel otherwise.
        target = os.path.join(os.path.dirname(self.get_ext_fullpath("stormcheck._manifest")), _C["MANIFEST"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            json.dump(self._built, f, indent=1, sort_keys=True)


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
