"""What a sampled storm run records so that its reaps can be replayed through the model.

A run of `model.storm` with ``record=True`` keeps, for every group of
interchangeable clients, the protocol steps it took, as a chain of `Node`s
(each points at the one before it). Groups that split share their past;
groups that merge keep one past (from the merge on they are the same
protocol state, so either past leads to it). Beside the chains it keeps the
servers' moves (`Move`): each tuner step the model's rules made, and the
scenario's connectivity loss and its end.

Nothing here decides anything: `checkers.certify` turns a chain and the moves
into a run of the model and replays it.

Order within a second
---------------------
The simulation takes each second in a fixed order (`model.storm`'s
docstring): a fault starts or ends, the clients due fire, reconnects
handshake, reapers sweep, extra judges fire, the tuner acts. `PHASE` numbers
those stages, so that client steps and server moves can be merged back into
the order the simulation made them in: by (second, phase), a server move
first on a tie (a loss drops its clients after it).
"""

from __future__ import annotations

from typing import NamedTuple

from .state import Action, Server

__all__ = ["Node", "Move", "Recording", "Pieces", "PHASE", "order"]

# The stage of a second at which each kind of step happens (see above).
PHASE = {"lose": 0, "restore": 0, "dropped": 0, "restarted": 0, "hung": 0, "init": 1, "reply": 1, "arrive": 1, "reload": 1, "existence": 1,
         "reconnect": 2, "publish": 3, "gc": 3, "judge": 4, "load": 5, "deadline": 5, "adopt": 5,
         "adopt_reaper": 5, "adopt_advice": 5}


class Node:
    """One step of a client's history.

    ``kind`` is ``init`` (placed by the steady state at t = ``t``, its
    session fresh then, on ``server``), ``reply``, ``arrive`` (a refresh),
    ``reconnect`` (a handshake on ``server``), ``dropped`` (its server lost
    connectivity), ``reload`` (the user reloaded the page) or ``reaped``.
    ``after`` is the model's `Client` after a reply, arrive or reconnect,
    as the simulation computed it. A ``reaped`` node names the reaper
    ``path`` (``existence``, ``publish``, ``gc``, or ``judge:J`` for extra
    judge J) and ``n``, how many interchangeable clients it reaped. A
    ``reply`` node's ``value`` is the round trip the reply took (the RTT, plus
    its server's delay behind queued work). ``restarted`` (a rolling restart
    dropped the socket) and ``hung`` (the client stopped answering) are faults
    the simulation has beyond the model's (`model.faults`).

    Nodes compare by identity: a chain is shared, never copied.
    """

    __slots__ = ("parent", "t", "kind", "server", "after", "path", "n", "value")

    def __init__(self, parent, t, kind, server=-1, after=None, path="", n=0.0, value=0):
        self.parent, self.t, self.kind, self.server = parent, t, kind, server
        self.after, self.path, self.n, self.value = after, path, n, value

    @property
    def phase(self) -> int:
        if self.kind == "reaped":
            return PHASE[self.path.split(":")[0]]
        return PHASE[self.kind]

    def chain(self) -> list[Node]:
        """The history up to and including this step, oldest first."""
        out, node = [], self
        while node is not None:
            out.append(node)
            node = node.parent
        return out[::-1]


class Move(NamedTuple):
    """A server-side step of the run: the model action and every server as it left them."""

    t: int
    action: Action
    servers: tuple[Server, ...]

    @property
    def phase(self) -> int:
        return PHASE[self.action.kind]


def order(item: Node | Move, index: int) -> tuple:
    """Sort key restoring the simulation's order: second, stage, server moves first, then as recorded."""
    return (item.t, item.phase, 0 if isinstance(item, Move) else 1, index)


class Recording:
    """The histories of one run: every valid reap's node, and the servers' moves."""

    def __init__(self) -> None:
        self.reaps: list[Node] = []
        self.moves: list[Move] = []
        self.levels: tuple = ()

    def start(self, t: int, server: int) -> Node:
        return Node(None, t, "init", server)

    def note(self, parent: Node, t: int, kind: str, server: int = -1, after=None, value: int = 0) -> Node:
        return Node(parent, t, kind, server, after, value=value)

    def reap(self, parent: Node, t: int, server: int, path: str, n: float) -> Node:
        node = Node(parent, t, "reaped", server, path=path, n=n)
        self.reaps.append(node)
        return node

    def server_move(self, t: int, action: Action, servers: tuple[Server, ...]) -> None:
        self.moves.append(Move(t, action, servers))

    def finish(self, levels) -> Recording:
        """Freeze with the run's level table (`Params.levels` of the certificates)."""
        self.levels = tuple(levels)
        return self


class Pieces:
    """The histories of clients pooled into one batch, handed out in order.

    The simulation draws a batch's outcomes once (which server, how long to
    wait); which of its interchangeable clients gets which outcome is only a
    labelling, made here, so that recording leaves the draws as they are.
    """

    def __init__(self, parts) -> None:
        self.parts = [[n, hist] for n, hist in parts if n > 0]

    def take(self, n: float) -> list[tuple[float, Node]]:
        """The next `n` clients, as (count, history) pieces."""
        out = []
        while n > 0 and self.parts:
            head = self.parts[0]
            count = min(n, head[0])
            out.append((count, head[1]))
            head[0] -= count
            n -= count
            if head[0] <= 0:
                self.parts.pop(0)
        return out
