"""Groups of interchangeable clients: what the storm simulation (`model.storm`) counts.

A group is `n` clients in one model phase, on one server, with one session
(or none) and one reconnect-policy state: everything the protocol and the
policy read. Two groups with equal keys behave alike from then on and merge.
Besides the model's phases a group may be

* ``DEAD``: an abandoned session still in a shared store (the model drops it:
  nothing reads it), until a reaper destroys it;
* ``HUNG``: clients that stopped answering while their sockets stay open
  (`model.faults`): not valid (the model's cut-off client), so a reap of
  their sessions is correct.
"""

from __future__ import annotations

from .state import RETRY, Client, Session

__all__ = ["Group", "DEAD", "HUNG"]

DEAD = "dead"
HUNG = "hung"


class Group:
    """Interchangeable clients: `n` of them, in one model phase, with one session (or none).

    ``t_ref`` is when the session was last refreshed (reference clock),
    ``stamp``, ``hs``, ``ref`` are the model's `Session` fields. ``attempt``,
    ``prev``, ``wstart``, ``used`` are the reconnect policy's state.
    """

    __slots__ = ("n", "phase", "server", "t_ref", "stamp", "hs", "ref", "attempt", "prev", "wstart", "used", "alive",
                 "hist")

    def __init__(self, n, phase, server=-1, t_ref=0, stamp=0, hs=0, ref=0, attempt=0, prev=0, wstart=0, used=0,
                 hist=None):
        self.n, self.phase, self.server, self.t_ref, self.stamp = n, phase, server, t_ref, stamp
        self.hs, self.ref, self.attempt, self.prev, self.wstart, self.used = hs, ref, attempt, prev, wstart, used
        self.alive = True
        self.hist = hist

    def key(self):
        return (self.phase, self.server, self.t_ref, self.stamp, self.hs, self.ref, self.attempt, self.prev,
                self.wstart, self.used)

    @property
    def base(self) -> int:
        """The refreshing server's clock at the refresh: a reaper on `s` sees the age ``t + offset(s) - base``."""
        return self.t_ref + self.stamp

    def session(self, t: int) -> Session | tuple:
        if self.phase == RETRY:
            return ()
        return Session(t - self.t_ref, self.stamp, self.hs, self.ref)


_RETRYING = Client(RETRY, -1, 0, ())  # a client about to reconnect: no socket, no session
