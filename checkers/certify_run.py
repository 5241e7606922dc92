"""The model run of one client history of a sampled storm run (`checkers.certify` says what it certifies).

`Builder` takes a history (`model.history`) and the servers' moves around
it, and applies them to a one-client fleet with the model's own rules: each
client step when the model's client is due, each server move in the
simulation's order right after the client step before it, each sweep at the
next deadline once the model's guard allows it at the simulation's own
instant. Where the model cannot follow, `NotCertified` says at which step
and why.
"""

from __future__ import annotations

from stormcheck.model import fleet
from stormcheck.model.events import Handshake, Reaped
from stormcheck.model.history import Move, Node, order
from stormcheck.model.params import Params
from stormcheck.model.state import RETRY, Action

__all__ = ["NotCertified", "Builder", "renumbered"]

_MAX_STEPS = 100_000  # a guard against a model run that never reaches the client's next step
# The urgent kinds of the fleets the simulation covers (rollouts' are refused before it runs).
_CLIENT_DUE = ("reply", "arrive", "reconnect")
_SERVER_DUE = ("restore", "deadline")


class NotCertified(Exception):
    """The model cannot take the simulation's step here; the message says which and why.

    ``inexpressible``: the step is not one of the protocol's (a page reload),
    so the model has nothing to hold the simulation to; otherwise the model
    refutes the step.
    """

    def __init__(self, message: str, inexpressible: bool = False) -> None:
        super().__init__(message)
        self.inexpressible = inexpressible


def renumbered(cl, renumber: dict[int, int]):
    """A client the simulation recorded, its session's levels in the certificate's numbers."""
    if cl is None or not cl.session:
        return cl
    x = cl.session
    return cl._replace(session=x._replace(hs_level=renumber.get(x.hs_level, x.hs_level),
                                          ref_level=renumber.get(x.ref_level, x.ref_level)))


def _keyed(nodes: list[Node]) -> list[tuple[tuple, Node]]:
    """A history's steps with their sort keys (`model.history.order`), in the history's own order.

    A step the simulation took at once after another in the same second (a
    heartbeat answered at once, after the handshake that opened its socket)
    keeps its place after it, whatever its usual stage.
    """
    out, last = [], (None, -1)
    for i, node in enumerate(nodes, start=1):
        key = order(node, i)
        if key[0] == last[0] and key[1] < last[1]:
            key = (key[0], last[1], *key[2:])
        out.append((key, node))
        last = key
    return out


class Builder:
    """The model run of one history: applies each step with the model's `step` (its guard checked)."""

    def __init__(self, params: Params, renumber: dict[int, int], records: list[dict]) -> None:
        self.p, self.records, self.renumber = params, records, renumber
        self.steps: list = []
        self.m = 0  # the model's clock
        self.shift = 0  # simulation time minus model time, for the session now being matched
        self.sim_down: set[int] = set()  # the servers down in the simulation now
        self.start_t = 0

    # ------------------------------------------------------------ steps

    # The builder asks only the guard of the rule it takes (and, before time
    # moves, those of the urgent ones): listing every enabled action costs a
    # pass over the run's whole level table. The replay that follows checks
    # every step against everything the model enables.

    def take(self, action: Action):
        rule = fleet.RULE[action.kind]
        enabled = rule.enabled(self.p, self.state)
        if action not in enabled:
            others = ", ".join(str(a) for a in enabled) or "none"
            raise NotCertified(f"at model time {self.m} (t={self.m + self.shift} s): the model does not enable "
                               f"{action} (of its kind it enables: {others})")
        st = rule.apply(self.p, self.state, action)
        self.steps.append((action, st))
        self.pre, self.state = self.state, st.state
        if action.kind == "tick":
            self.m += action.value
        return st

    def due(self, kinds: tuple[str, ...]) -> list[Action]:
        """The actions of `kinds` (urgent ones) enabled now."""
        return [a for k in kinds if fleet.RULE[k].has(self.p) for a in fleet.RULE[k].enabled(self.p, self.state)]

    def tick_or_urgent(self, t: int, wanted: str) -> None:
        """One step toward the client's next deadline: a due server step (a loss's end), or time."""
        urgent = self.due(_SERVER_DUE)
        if urgent:
            self.take(urgent[0])
            return
        client = self.due(_CLIENT_DUE)
        if client:
            due = ", ".join(str(a) for a in client)
            raise NotCertified(f"t={t} s: the simulation's client {wanted}, the model's has {due} due")
        self.take(fleet.RULE["tick"].enabled(self.p, self.state)[0])

    def client_step(self, node: Node, action: Action, kind: str):
        """Advance to the client's deadline and take `action` there."""
        for _ in range(_MAX_STEPS):
            if action in fleet.RULE[action.kind].enabled(self.p, self.state):
                break
            cl = self.state.clients[0]
            if kind == "reconnect" and cl.timer == 0 and self.state.servers[node.server].down:
                if node.server in self.sim_down:
                    raise NotCertified(f"t={node.t} s: the simulation's client handshakes on s{node.server}, which "
                                       "is down in the simulation")
                # The model's loss began at an earlier deadline, and the
                # client's retries since waited longer in the run than the
                # model's fixed retry (its policy, admission, a budget).
                raise NotCertified(f"t={node.t} s: the simulation's client handshakes on s{node.server}, up again "
                                   "in the run but still down in the model: the client's reconnects since the loss "
                                   "waited longer than the model's fixed retry (policy, admission or budget), which "
                                   "the model's client does not do", inexpressible=True)
            if kind != "reconnect" and self.m + self.shift > node.t:
                raise NotCertified(f"t={node.t} s: the simulation's client {kind}s; the model's is not due by then")
            self.tick_or_urgent(node.t, f"{kind}s")
        else:
            raise NotCertified(f"t={node.t} s: the model's client never becomes due to {kind}")
        if kind == "reconnect":
            self.shift = node.t - self.m  # a new session: its life is matched from here
        elif self.m + self.shift != node.t:
            raise NotCertified(f"t={node.t} s: the simulation's client {kind}s; the model's is due at "
                               f"t={self.m + self.shift} s")
        return self.take(action)

    def expect(self, node: Node, st) -> None:
        got = st.state.clients[0]
        want = self.client(node.after)
        if want.session:
            want = want._replace(session=want.session._replace(age=min(want.session.age, self.p.age_cap)))
        if got != want:
            raise NotCertified(f"t={node.t} s: after its {node.kind}, the simulation's client is {want}, the "
                               f"model's {got}")

    # ------------------------------------------------------------ the run's level numbers

    def level(self, i: int) -> int:
        return self.renumber.get(i, i)  # STALE (-1) stays

    def client(self, cl):
        return renumbered(cl, self.renumber)

    def levels(self, servers) -> list[tuple[int, int, int]]:
        return [(self.level(s.target), self.level(s.adv), self.level(s.reap)) for s in servers]

    # ------------------------------------------------------------ server moves

    def until_up(self, server: int, t: int) -> None:
        """A server still down in the model, up in the run: on to the model's own end of its loss.

        (The model's loss began at a deadline before the run's; it ends as
        many seconds earlier, unless the client's clock has moved since.)
        Only while the client has no step due first.
        """
        for _ in range(_MAX_STEPS):
            if self.state.servers[server].down == 0:
                return
            self.tick_or_urgent(t, f"finds s{server} up")

    def server_move(self, move: Move) -> None:
        a = move.action
        if a.kind in ("lose", "restore"):
            (self.sim_down.add if a.kind == "lose" else self.sim_down.discard)(a.server)
        if a.kind == "restore":
            return  # the model's own deadline (see the module docstring)
        if a.kind == "deadline" and self.state.tuner_timer != -1:
            # The run's propagation deadline, before the model's clock got there:
            # each server adopts the change, as the model lets it at any moment.
            for adopt in fleet.RULE["adopt"].enabled(self.p, self.state):
                self.take(adopt)
        else:
            action = a._replace(value=self.level(a.value)) if a.kind == "load" else a
            if action.server >= 0:
                self.until_up(action.server, move.t)
            self.take(action)
        got = [(s.target, s.adv, s.reap) for s in self.state.servers]
        want = self.levels(move.servers)
        if got != want:
            raise NotCertified(f"t={move.t} s: after {a}, the simulation's servers run levels (target, advice, "
                               f"reaper) {want}, the model's {got}")

    # ------------------------------------------------------------ sweeps

    def reap(self, node: Node, record: dict) -> None:
        path = node.path
        if path.startswith("judge:"):
            action = Action("expire", client=0, value=int(path.split(":")[1]))
        else:
            action = Action(path, server=node.server)
        target = node.t - self.shift  # the model time of the simulation's instant
        for _ in range(_MAX_STEPS):
            urgent = self.due(_SERVER_DUE)
            tick = fleet.RULE["tick"].enabled(self.p, self.state)[0]
            if urgent:
                self.take(urgent[0])
            elif not self.due(_CLIENT_DUE) and self.m + tick.value <= target:
                self.take(tick)
            else:
                break
        # The state the model passes through at the simulation's instant: its
        # tick's effect over the part of the interval elapsed.
        at = self.state
        if target < self.m:
            raise NotCertified(f"t={node.t} s: the model's clock is past the simulation's sweep")
        if target > self.m:
            at = fleet.RULE["tick"].apply(self.p, at, Action("tick", value=target - self.m)).state
        if action not in fleet.RULE[action.kind].enabled(self.p, at):
            session = at.clients[0].session
            raise NotCertified(f"t={node.t} s: the simulation's {path} on s{node.server} reaps the client "
                               f"(session {session}), which the model's guard does not allow then")
        record["age"] = fleet.perceived_age(self.p, at.clients[0].session, max(node.server, 0)) \
            if node.server >= 0 else at.clients[0].session.age
        if action not in fleet.RULE[action.kind].enabled(self.p, self.state):
            if self.due(_CLIENT_DUE + _SERVER_DUE):
                raise NotCertified(f"t={node.t} s: the model's client has a step due before the sweep")
            self.take(fleet.RULE["tick"].enabled(self.p, self.state)[0])
        st = self.take(action)
        if not any(isinstance(e, Reaped) and e.client == 0 for e in st.events) or not fleet.is_valid(self.pre, 0):
            raise NotCertified(f"t={node.t} s: the model's {action} does not reap the valid client")
        record["step"] = len(self.steps)

    # ------------------------------------------------------------ a history

    def build(self, chain: list[Node], moves: list[Move], reloaded: bool) -> None:
        """Take `chain` and the moves around it; `reloaded`: the chain begins after a page reload, mid-run."""
        first = chain[0]
        self.start_t = first.t
        self.shift = first.t
        server = first.after.server if first.after is not None else first.server
        states = [s for s in fleet.initial_states(self.p) if s.clients[0].server == server]
        self.initial = self.state = states[0]
        key = order(first, 0)
        rest = chain[1:]
        end = order(chain[-1], len(chain))
        later = []
        for i, move in enumerate(moves):
            k = order(move, i)
            if k < key:
                if reloaded and move.action.kind not in ("lose", "restore"):
                    # Before a reload: the servers' moves so far, taken at the outset.
                    self.server_move(move)
            elif k < end:
                later.append((k, move))
        if reloaded:
            self.check_servers(first, moves, key)
        items = sorted(later + _keyed(rest), key=lambda x: x[0])
        records = iter(self.records)
        for _, item in items:
            if isinstance(item, Move):
                self.server_move(item)
            elif item.kind == "reaped":
                self.reaped(item, next(records))
            else:
                self.step_of(item)

    def check_servers(self, first: Node, moves: list[Move], key: tuple) -> None:
        before = [m for i, m in enumerate(moves) if order(m, i) < key]
        want = self.levels(before[-1].servers) if before else None
        got = [(s.target, s.adv, s.reap) for s in self.state.servers]
        if want is not None and got != want:
            raise NotCertified(f"t={first.t} s: the servers' moves before the reload do not bring the model's "
                               f"servers to the simulation's levels {want} (the model's: {got})")

    def step_of(self, node: Node) -> None:
        kind = node.kind
        if kind == "reply":
            if node.value not in self.p.rtt:
                # A reply held behind queued work (`LoadModel.reply_share`) runs on a fleet
                # whose RTT choices include its round trip (`checkers.certify`): one that
                # does not is the caller's error, not a verdict on the simulation.
                raise ValueError(f"t={node.t} s: the history's reply took {node.value} s, and the certificate's "
                                 f"[protocol] rtt choices {list(self.p.rtt)} do not include it: build it on the "
                                 "fleet with its round trips added (checkers.certify.late_config)")
            self.expect(node, self.client_step(node, Action("reply", client=0, value=node.value), kind))
        elif kind == "arrive":
            self.expect(node, self.client_step(node, Action("arrive", client=0), kind))
        elif kind == "reconnect":
            if self.pending_handshake is not None:
                # The model's client handshook in the arrive step the existence check refused.
                (t, st), self.pending_handshake = self.pending_handshake, None
                if node.t != t:
                    raise NotCertified(f"t={t} s: refused by the existence check, the simulation's client "
                                       f"handshakes only at t={node.t} s (admission or a retry budget); the "
                                       "model's handshakes at once")
                self.expect(node, st)
                return
            self.expect(node, self.client_step(node, Action("reconnect", client=0, server=node.server), kind))
        elif kind == "dropped":
            cl = self.state.clients[0]
            if cl.phase != RETRY:
                raise NotCertified(f"t={node.t} s: s{node.server}'s loss drops the simulation's client; the "
                                   f"model's is {cl.phase}")
        else:
            raise NotCertified(f"t={node.t} s: a {kind} in the middle of a history")

    pending_handshake = None  # (t, step): the arrive a refused connect handshook in, until its handshake node

    def reaped(self, node: Node, record: dict) -> None:
        if node.path != "existence":
            self.reap(node, record)
            return
        # The existence check refuses the arriving connect, and the client
        # (Gitter's, after_401 "at-once") handshakes anew in the same step.
        st = self.client_step(node, Action("arrive", client=0), "arrive")
        if not fleet.is_valid(self.pre, 0) or not any(isinstance(e, Reaped) and e.path == "existence" for e in st.events):
            raise NotCertified(f"t={node.t} s: the simulation's existence check refuses the client; the model's "
                               "arrive refreshes it")
        if not any(isinstance(e, Handshake) for e in st.events):
            raise NotCertified(f"t={node.t} s: the model's refused client does not handshake at once")
        record["age"] = next(e.age for e in st.events if isinstance(e, Reaped))
        record["step"] = len(self.steps)
        self.pending_handshake = (node.t, st)
