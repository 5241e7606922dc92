"""The program's entry point: ``stormcheck`` (console script) and ``python -m stormcheck``.

Kept free of heavy imports: the signal handlers (`stormcheck.signals`) go
in first, so that Ctrl-C or SIGTERM while Z3, NumPy and Hypothesis are
still importing ends the run with one line and 128 + the signal, like a
signal at any later moment, not with a traceback.

Hypothesis keeps more than its example database under its home folder,
``./.hypothesis`` unless told otherwise: every run caches the constants it
reads from the source files it imports there, seeded or not. A command
must leave nothing in the user's folder but what it was asked to write, so
the program gives Hypothesis a home of its own for the run and removes it at
exit. The example database of an unseeded ``check`` is a path of its own
(``.hypothesis/examples``, kept on purpose) and is not affected; nor is a
home the user chose with ``HYPOTHESIS_STORAGE_DIRECTORY``.
"""

import atexit
import os
import shutil
import sys
import tempfile

from stormcheck import signals

__all__ = ["main"]


def _private_hypothesis_home() -> None:
    # Read by Hypothesis when it first needs its home, which no import does.
    if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
        home = tempfile.mkdtemp(prefix="stormcheck-hypothesis-")
        os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = home
        atexit.register(shutil.rmtree, home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    signals.install()
    _private_hypothesis_home()
    try:
        from stormcheck.cli import main as cli_main
        rc = cli_main(argv)  # reports its own interrupts, then holds any later signal
    except signals.Interrupted as err:  # before the command's own handling began
        print(f"stormcheck: {err} while starting; nothing was written", file=sys.stderr)
        rc = signals.exit_code(err.signum)
    signals.finish()
    return rc


if __name__ == "__main__":  # guard: importing this module must not exit
    raise SystemExit(main())
