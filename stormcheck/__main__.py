"""Allow `python -m stormcheck`."""
from .cli import main

if __name__ == "__main__":  # guard: importing this module must not exit
    raise SystemExit(main())
