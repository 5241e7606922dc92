"""The program's entry point: ``stormcheck`` (console script) and ``python -m stormcheck``.

Kept free of heavy imports: the signal handlers (`stormcheck.signals`) go
in first, so that Ctrl-C or SIGTERM while Z3, NumPy and Hypothesis are
still importing ends the run with one line and 128 + the signal, like a
signal at any later moment, not with a traceback.
"""

import sys

from stormcheck import signals

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    signals.install()
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
