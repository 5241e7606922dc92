# Shared venv bootstrap; *sourced* (not run) by bin/stormcheck and bin/test.
# After sourcing: $ROOT is the repo root and $ROOT/.venv holds an editable
# install of the project with the `test` extra.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# The stamp records a checksum of pyproject.toml: pip only reruns when the
# dependencies / package layout may have changed.  Source edits need no
# reinstall, since the install is editable.
STAMP="$VENV/.pyproject.cksum"
export PIP_ROOT_USER_ACTION=ignore   # CI runs as root; silence pip's warning

_bootstrap_die() { echo "bootstrap: $*" >&2; exit 1; }

# Serialise concurrent callers (several people/agents share this working
# tree) so two runs never build the venv at the same time.  flock is absent
# on macOS; there we simply go without the lock.
if command -v flock >/dev/null; then
    exec 9>"$ROOT/.venv.lock"
    flock 9
fi

if [ ! -x "$VENV/bin/python" ]; then
    # Prefer python3.11; accept plain python3 only if it is 3.11+.  Each
    # candidate is actually *run*: a pyenv shim can exist yet not work.
    PY=""
    for cand in python3.11 python3; do
        if "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            PY="$cand"; break
        fi
    done
    [ -n "$PY" ] || _bootstrap_die "need Python 3.11+ (python3.11 or python3 on PATH)"
    echo "bootstrap: creating .venv with $("$PY" --version)" >&2
    rm -rf "$VENV"   # drop any half-built leftovers
    "$PY" -m venv "$VENV" || { rm -rf "$VENV"; _bootstrap_die "python -m venv failed"; }
fi

# cksum is POSIX (sha256sum is missing on macOS); detecting change is enough.
_want="$(cksum <"$ROOT/pyproject.toml")"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$_want" ]; then
    echo "bootstrap: installing stormcheck (editable, with [test]) into .venv and compiling its search core" \
         "(a few minutes the first time)" >&2
    # -q hides progress but pip still prints errors.  The stamp is written
    # only on success, so a failed install is retried on the next run.
    (cd "$ROOT" && "$VENV/bin/python" -m pip install -q -e '.[test]') \
        || _bootstrap_die "pip install failed (see errors above)"
    echo "$_want" >"$STAMP"
    "$VENV/bin/python" -c 'import sys, stormcheck._compiled as c; sys.exit(0 if c.compiled_any() else 1)' \
        || echo "bootstrap: the search core was not compiled (no C compiler? apt-get install gcc, then" \
                "rm $STAMP and run again); it runs from source, about 1.5 x slower" >&2
fi

# The compiled search core (stormcheck/_compiled.py): a source edited since it was compiled runs
# as source until it is compiled again, which is done here (a minute or two), before the run.
_stale="$("$VENV/bin/python" -c 'import sys, stormcheck._compiled as c; print(" ".join(c.stale(sys.argv[1])))' "$ROOT" 2>/dev/null || true)"
if [ -n "$_stale" ]; then
    echo "bootstrap: compiling the search core again ($_stale changed)" >&2
    (cd "$ROOT" && "$VENV/bin/python" -m pip install -q --no-deps -e .) || true
    _left="$("$VENV/bin/python" -c 'import sys, stormcheck._compiled as c; print(" ".join(c.uncompiled(sys.argv[1])))' "$ROOT" 2>/dev/null || true)"
    [ -z "$_left" ] || echo "bootstrap: compiling failed ($_left run from source, about 1.5 x slower; a C" \
                            "compiler, gcc, compiles them at the next install: rm $STAMP and run again)" >&2
fi

# Release the lock: the caller is about to exec a long-running command and
# must not keep other callers waiting for it.
exec 9>&-
