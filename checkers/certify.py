"""Certified storms: each valid reap of a sampled run, replayed through the model.

The storm simulation (`model.storm`) applies the model's rules to counts of
clients, in its own time steps. Certification holds it to the model: for
every valid session a sampled run reaps, it builds a run of the model itself
(`model.fleet`: its initial states, its actions, its `step`) on a fleet of
the scenario's servers and one client, the reaped one, that takes that
client's steps as the simulation recorded them (`model.history`) and the
servers' moves in between, and ends in the model's own `no_valid_reap`
violation. That run is written as an ITF trace and replayed by the code
``stormcheck replay`` uses (`traces.export.replay_trace`, every guard
checked). A reap the protocol cannot produce has no such run: it is counted
*not certified*, with the step at which the model parted from the
simulation.

The mapping
-----------
* **Levels.** The certificate's fleet is the scenario's, with the level
  table the run grew (`[load] levels_ms` = the latencies at which its
  adjuster met each advice, in increasing order, the run's level indices
  renumbered to match) and ``trigger = "free"``: the
  run's load model, not the model's abstraction of it, decided when a load
  moved, and each move is the model's ``load`` action at that moment. The
  fleet has one client.
* **Client steps** (reply, arrive, handshake) happen at the client's own
  deadlines, in the model as in the simulation; each is taken when the
  model's client is due and the client it leaves must equal the one the
  simulation recorded (phase, server, timer, session).
* **Server moves** (a tuner step, the loss of connectivity) are taken in the
  simulation's order, right after the client step that preceded them: the
  model steps only from deadline to deadline, and between two of the
  client's steps the order is what its next step can see.
* **Sweeps.** The model's reapers may act at any deadline; a sweep the
  simulation made between two of them is taken at the next one (where the
  session is older: the model's worst case). The reap itself is checked at
  the simulation's instant: the model's guard must enable it in the state
  the model passes through then (its own ``tick`` effect over the part of
  the interval elapsed), so a reap one second early is not certified.
* **Time.** A client without a session (it dropped, or was reaped, and
  waits to reconnect) is where the two clocks may part: the model retries
  after its fixed ``retry`` and steps only to deadlines, the simulation
  waits its reconnect policy's draw. Nothing of the client is judged while
  it has no session, so the next handshake is matched by order, and each
  session's life is matched second for second. The loss's end is the
  model's own deadline; a server up earlier in the model than in the run
  only enables more. A client that waited longer than the model's retry
  may find the lost server up in the run and still down in the model: that
  handshake is counted *not expressible* (the model's client has one fixed
  wait), by name.
* **Page reloads** are not a protocol step. A history after one starts the
  model run at its first step that leaves one of the model's initial
  clients (a fresh session at the base level: the reload's own handshake,
  or a later one), the servers' earlier moves taken at the outset; the reaps
  before that step have no model run and are counted *not expressible*, by
  name, never certified.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass

from stormcheck.model import fleet
from stormcheck.model.events import Handshake, Reaped
from stormcheck.model.history import Move, Node, order
from stormcheck.model.params import Params
from stormcheck.model.scenario import Scenario, scenario_from_dict
from stormcheck.model.state import RETRY, Action
from stormcheck.model.storm import Series
from stormcheck.properties.protocol import no_valid_reap
from stormcheck.traces.export import replay_trace, run_to_trace
from stormcheck.traces.itf import Trace
from stormcheck.traces.run import Run, replay

__all__ = ["Certificate", "Certification", "certify", "certificate_scenario", "NotCertified"]

ENGINE = "storm-certify"
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


@dataclass(frozen=True)
class Certificate:
    """One client history's model run: the reaps it certifies, or why it certifies none."""

    name: str  # c0, c1, ... by the time of the history's last reap
    reaps: tuple[dict, ...]  # each: t, server, path, age, clients, step (in the run; None if not reached)
    run: Run | None
    trace: Trace | None
    problem: str | None  # None: certified
    inexpressible: bool = False  # the problem is a step the protocol does not have, not one it refutes
    start_t: int = 0  # the simulation's time at the model run's initial state

    @property
    def clients(self) -> float:
        return sum(r["clients"] for r in self.reaps)


@dataclass(frozen=True)
class Certification:
    """Every valid reap of one run, and how many of them the model certified."""

    valid_reaps: int
    certified: int
    inexpressible: int  # reaps whose history takes a step the model does not have (a page reload, a longer wait)
    certificates: tuple[Certificate, ...]
    config: dict  # the certificates' fleet (`certificate_scenario`), as a scenario config

    def trace(self, certificate: Certificate, meta: dict | None = None) -> Trace:
        """`certificate`'s model run as an ITF trace that ``stormcheck replay`` re-checks (`meta`: more ``#meta``).

        Made on demand, in the process that writes it: a trace's event
        records are classes made at run time, which do not pickle.
        """
        if certificate.trace is not None:
            return certificate.trace
        cert = scenario_from_dict(self.config, source="certificate")
        return run_to_trace(certificate.run, cert.params, _trace_meta(cert, certificate, meta or {}))

    @property
    def uncertified(self) -> int:
        return self.valid_reaps - self.certified

    @property
    def refuted(self) -> int:
        """Reaps the model does not let happen as the simulation made them: a simulation the model contradicts."""
        return self.uncertified - self.inexpressible

    def summary(self) -> str:
        text = f"{self.valid_reaps:,} valid reaps, {self.certified:,} certified by replay"
        inexpressible = [c for c in self.certificates if c.problem and c.inexpressible]
        if inexpressible:
            text += (f"; {self.inexpressible:,} not expressible in the model, first: {inexpressible[0].name}: "
                     f"{inexpressible[0].problem}")
        refuted = [c for c in self.certificates if c.problem and not c.inexpressible]
        if refuted:
            text += f"; {self.refuted:,} NOT certified, first: {refuted[0].name}: {refuted[0].problem}"
        return text


def certificate_scenario(scenario: Scenario, series: Series) -> tuple[Scenario, dict[int, int]]:
    """The fleet the certificates run on, and the renumbering of the run's levels into its own.

    `scenario`'s fleet with one client, the run's level table (a scenario
    lists its levels by increasing latency; the run numbers them as met)
    and load free to move.
    """
    met = series.history.levels
    ordered = sorted(range(len(met)), key=lambda i: met[i].avg_ms)
    config = copy.deepcopy(scenario.config)
    config["topology"]["clients"] = 1
    config["load"]["levels_ms"] = [met[i].avg_ms for i in ordered]
    config["load"]["trigger"] = "free"
    config.pop("ranges", None)  # a certificate is a point
    cert = scenario_from_dict(config, source=f"certificate of {scenario.source}")
    p = cert.params
    if tuple(p.levels) != tuple(met[i] for i in ordered):
        raise ValueError(f"the certificate's levels {p.levels} are not the run's {met}")
    same = dataclasses.replace(scenario.params, levels=p.levels, load_trigger="free", clients=1)
    if same != p:
        raise ValueError("the certificate's fleet differs from the scenario's beyond levels, trigger and clients")
    return cert, {old: new for new, old in enumerate(ordered)}


def certify(scenario: Scenario, series: Series, meta: dict | None = None, traces: bool = False,
            through_itf: bool = False) -> Certification:
    """Certify every valid reap `series` recorded (a `simulate(..., record=True)` run of `scenario`).

    Each model run is replayed from one of the model's initial states with
    `traces.run.replay` (the replay ``stormcheck replay`` makes of a
    decoded trace), every step's guard checked and every state compared.
    With `traces`, each is also made an ITF trace (`Certificate.trace`;
    `meta` goes into its ``#meta``: seed, mitigation, ...); with
    `through_itf` too, the replay is of that trace read back from JSON,
    exactly as ``stormcheck replay`` reads a file (decoding makes it several
    times slower).
    """
    if series.history is None:
        raise ValueError("the run kept no history: simulate it with record=True (sampled mode)")
    cert, renumber = certificate_scenario(scenario, series)
    rec = series.history
    # A reap whose client was reaped again later is certified by the later
    # reap's run, which goes through it: one run per history's last reap.
    # (Not across a page reload: the run after it starts anew, see `_model_start`.)
    covered: set[int] = set()
    for node in rec.reaps:
        parent = node.parent
        while parent is not None and parent.kind != "reload":
            if parent.kind == "reaped":
                covered.add(id(parent))
            parent = parent.parent
    leaves = sorted((n for n in rec.reaps if id(n) not in covered), key=lambda n: n.t)
    moves = rec.moves
    certificates = []
    done: dict[int, float] = {}
    inexpressible: dict[int, float] = {}
    for i, leaf in enumerate(leaves):
        c, run_nodes, before = _certify_one(f"c{i}", cert, renumber, leaf, moves, (meta or {}) if traces else None,
                                            through_itf)
        certificates.append(c)
        inexpressible.update((id(n), n.n) for n in before)
        if c.problem is None or c.inexpressible:
            (done if c.problem is None else inexpressible).update((id(n), n.n) for n in run_nodes)
    inexpressible = {k: v for k, v in inexpressible.items() if k not in done}
    valid = sum(n.n for n in rec.reaps)
    return Certification(int(round(valid)), int(round(sum(done.values()))), int(round(sum(inexpressible.values()))),
                         tuple(certificates), cert.config)


def _since_reload(chain: list[Node]) -> list[Node]:
    """The part of a history a model run covers: all of it, or what follows the last page reload."""
    reloads = [i for i, n in enumerate(chain) if n.kind == "reload"]
    return chain[reloads[-1] + 1:] if reloads else chain


def _model_start(chain: list[Node], params: Params, renumber: dict) -> int | None:
    """Where a history after a page reload can begin as a model run: its first step that leaves one of the
    model's initial clients (fresh at the base level on some server); None if none does."""
    initial = {s.clients[0] for s in fleet.initial_states(params)}
    for i, node in enumerate(chain):
        if node.kind in ("reconnect", "arrive") and _renumbered(node.after, renumber) in initial:
            return i
    return None


def _certify_one(name: str, cert: Scenario, renumber: dict, leaf: Node, moves: list[Move],
                 meta: dict | None, through_itf: bool) -> tuple[Certificate, list[Node], list[Node]]:
    """The certificate of `leaf`'s history, the reap nodes its run covers, and those before the run's start."""
    full = leaf.chain()
    chain = _since_reload(full)
    reloaded = full[0] is not chain[0]
    before: list[Node] = []
    if reloaded:
        start = _model_start(chain, cert.params, renumber)
        if start is None:
            nodes = [n for n in chain if n.kind == "reaped"]
            records = [{"t": n.t, "server": n.server, "path": n.path, "clients": n.n, "step": None} for n in nodes]
            why = (f"t={chain[0].t} s: the page reloads and its new session begins on s{chain[0].server} at a level "
                   "other than the base one, and the client is not again at the base level before this reap; a "
                   "reload is not a protocol step, and the model's clients begin at the base level")
            return Certificate(name, tuple(records), None, None, why, True), nodes, []
        before = [n for n in chain[:start] if n.kind == "reaped"]
        chain = chain[start:]
    nodes = [n for n in chain if n.kind == "reaped"]
    records = [{"t": n.t, "server": n.server, "path": n.path, "clients": n.n, "step": None} for n in nodes]
    builder = _Builder(cert.params, renumber, records)
    try:
        builder.build(chain, moves, reloaded=reloaded)
    except NotCertified as err:
        return Certificate(name, tuple(records), None, None, str(err), err.inexpressible), nodes, before
    run = Run(builder.initial, tuple(builder.steps))
    c = Certificate(name, tuple(records), run, None, None, start_t=builder.start_t)
    trace = None if meta is None else run_to_trace(run, cert.params, _trace_meta(cert, c, meta))
    problem = _replays(run, trace, cert, records, through_itf)
    return dataclasses.replace(c, trace=trace, problem=problem), nodes, before


def _trace_meta(cert: Scenario, c: Certificate, meta: dict) -> dict:
    return {"scenario": cert.name, "scenario_config": cert.config, "design": cert.design.name,
            "property": no_valid_reap.name, "modality": no_valid_reap.modality, "verdict": "violated",
            "basis": f"the simulation's reaps of {c.name} (the last at t={c.reaps[-1]['t']} s), replayed through "
                     "the model", "engine": ENGINE, "client": c.name, "sim_time_at_start": c.start_t,
            "reaps": list(c.reaps), **meta}


def _replays(built: Run, trace: Trace | None, cert: Scenario, records: list[dict], through_itf: bool) -> str | None:
    """Replay the model run (from its ITF trace, as ``stormcheck replay`` reads it, with `through_itf`).

    None when it replays from one of the model's initial states and shows
    every reap the history has as a violation of `no_valid_reap`.
    """
    from stormcheck.output import finding_lost  # the CLI's own check of a replayed finding

    params = scenario_from_dict(cert.config, source="certificate").params
    if built.initial not in fleet.initial_states(params):
        return "the model run does not start in one of the model's initial states"
    try:
        if through_itf and trace is not None:
            stored = Trace.from_json(json.loads(json.dumps(trace.to_json())))
            run = replay_trace(stored, params)
        else:
            run = replay(params, built.initial, built.actions, expected=built.states)
    except ValueError as err:
        return f"the model run does not replay: {err}"
    lost = finding_lost(params, no_valid_reap, run)
    if lost is not None:
        return f"the model run replays, but {lost}"
    states = run.states
    for r in records:
        i = r["step"]
        action, st = run.steps[i - 1]
        if no_valid_reap.check(params, states[i - 1], action, st):
            return f"step {i} of the model run does not reap the valid client (t={r['t']} s)"
    return None


def _renumbered(cl, renumber: dict[int, int]):
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


class _Builder:
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
        return _renumbered(cl, self.renumber)

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
            self.expect(node, self.client_step(node, Action("reply", client=0, value=self.p.rtt_max), kind))
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
