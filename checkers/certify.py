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
  name, never certified. The same holds after the simulation's faults
  that are not the model's (`model.faults`): a rolling restart's drop and a
  hung client's reconnect when its hang ends. A hung client's own sessions
  are never counted as valid reaps (the model's cut-off client is not valid).
* **Late replies.** A reply the simulation delays behind its server's queued
  work (`LoadModel.reply_share`) takes the RTT plus that delay, often far
  beyond the scenario's ``[protocol] rtt`` choices. A history whose replies
  take such round trips runs on the certificate's fleet with ``[protocol]
  rtt`` extended by exactly those (sorted, without repeats): the model's
  ``reply`` with that value, every other guard as before, and the trace's
  ``scenario_config`` that extended fleet, so ``stormcheck replay`` checks
  it on it. Only those histories: the model's retry wait after a drop is
  ``retry`` plus the largest RTT (`Params.retry_delay`), so the extended
  fleet's client waits longer than the scenario's. Such reaps are counted
  apart (`Certification.late`): certified on a fleet whose round trips the
  scenario does not allow. A reap earlier in such a history, before its
  first late reply, is certified by its own run on the unextended fleet.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass

from stormcheck.model import fleet
from stormcheck.model.history import Move, Node
from stormcheck.model.params import Params
from stormcheck.model.scenario import Scenario, scenario_from_dict
from stormcheck.model.storm import Series
from stormcheck.properties.protocol import no_valid_reap
from stormcheck.traces.export import replay_trace, run_to_trace
from stormcheck.traces.itf import Trace
from stormcheck.traces.run import Run, replay

from .certify_run import Builder, NotCertified, renumbered

__all__ = ["Certificate", "Certification", "certify", "certificate_scenario", "late_config", "NotCertified"]

ENGINE = "storm-certify"
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
    late: tuple[int, ...] = ()  # round trips beyond [protocol] rtt its run takes: added to its fleet's rtt

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
    late: int = 0  # certified reaps whose history took round trips beyond [protocol] rtt (each on its own fleet)

    def trace(self, certificate: Certificate, meta: dict | None = None) -> Trace:
        """`certificate`'s model run as an ITF trace that ``stormcheck replay`` re-checks (`meta`: more ``#meta``).

        Made on demand, in the process that writes it: a trace's event
        records are classes made at run time, which do not pickle.
        """
        if certificate.trace is not None:
            return certificate.trace
        cert = scenario_from_dict(late_config(self.config, certificate.late), source="certificate")
        return run_to_trace(certificate.run, cert.params, _trace_meta(cert, certificate, meta or {}))

    @property
    def uncertified(self) -> int:
        return self.valid_reaps - self.certified

    @property
    def latest(self) -> int | None:
        """The longest round trip a certified run took beyond [protocol] rtt (None: none did)."""
        return max((max(c.late) for c in self.certificates if c.problem is None and c.late), default=None)

    @property
    def refuted(self) -> int:
        """Reaps the model does not let happen as the simulation made them: a simulation the model contradicts."""
        return self.uncertified - self.inexpressible

    def summary(self) -> str:
        text = f"{self.valid_reaps:,} valid reaps, {self.certified:,} certified by replay"
        if self.late:
            text += (f" ({self.late:,} of them after replies that took up to {self.latest} s, beyond [protocol] rtt "
                     f"{list(self.config['protocol']['rtt'])}: on the fleet with those round trips added)")
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


def late_config(config: dict, late: tuple[int, ...]) -> dict:
    """A certificate fleet's `config` with ``[protocol] rtt`` extended by the round trips `late` (sorted, once each)."""
    if not late:
        return config
    out = copy.deepcopy(config)
    protocol = out.setdefault("protocol", {})
    protocol["rtt"] = sorted(set(protocol.get("rtt", Params.rtt)) | set(late))
    return out


def _late_scenario(cert: Scenario, late: tuple[int, ...]) -> Scenario:
    """`cert` with the round trips `late` added to its RTT choices, and nothing else changed."""
    extended = scenario_from_dict(late_config(cert.config, late), source=f"{cert.source}, with round trips {list(late)}")
    if dataclasses.replace(cert.params, rtt=extended.params.rtt) != extended.params:
        raise ValueError("the fleet with late round trips differs from the certificate's beyond [protocol] rtt")
    return extended


def _is_late(node: Node, rtt: tuple[int, ...]) -> bool:
    """A reply whose round trip is not one of `rtt` (the scenario's choices): held behind queued work."""
    return node.kind == "reply" and node.value not in rtt


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
    # (Not across a page reload: the run after it starts anew, see `_model_start`.
    # Nor across the history's first late reply: the run after it is on a fleet
    # with round trips the scenario's lacks, and a reap before it has its own run,
    # on the scenario's fleet.)
    rtt = cert.params.rtt
    covered: set[int] = set()
    for node in rec.reaps:
        path, parent = [], node.parent
        while parent is not None and parent.kind not in RESTARTS:
            path.append(parent)
            parent = parent.parent
        path.reverse()
        first_late = next((i for i, n in enumerate(path) if _is_late(n, rtt)), len(path))
        covered.update(id(n) for i, n in enumerate(path)
                       if n.kind == "reaped" and (i > first_late or first_late == len(path)))
    leaves = sorted((n for n in rec.reaps if id(n) not in covered), key=lambda n: n.t)
    moves = rec.moves
    certificates = []
    fleets = {(): cert}  # the certificate fleet for each set of late round trips, made once
    done: dict[int, float] = {}
    late: dict[int, float] = {}  # certified only on a fleet with late round trips
    inexpressible: dict[int, float] = {}
    for i, leaf in enumerate(leaves):
        c, run_nodes, before = _certify_one(f"c{i}", fleets, renumber, leaf, moves,
                                            (meta or {}) if traces else None, through_itf)
        certificates.append(c)
        inexpressible.update((id(n), n.n) for n in before)
        if c.problem is None:
            (late if c.late else done).update((id(n), n.n) for n in run_nodes)
        elif c.inexpressible:
            inexpressible.update((id(n), n.n) for n in run_nodes)
    late = {k: v for k, v in late.items() if k not in done}
    done.update(late)
    inexpressible = {k: v for k, v in inexpressible.items() if k not in done}
    valid = sum(n.n for n in rec.reaps)
    return Certification(int(round(valid)), int(round(sum(done.values()))), int(round(sum(inexpressible.values()))),
                         tuple(certificates), cert.config, int(round(sum(late.values()))))


# The steps after which a client begins anew, with a session of its own that no
# protocol step led to: a page reload, a setup given up at its deadline (the
# client's own timer, not a protocol rule; it reconnects by its policy), and the
# faults the model's fleet does not have (`model.faults`): a rolling restart's
# drop (the model loses at most [faults] server_loss servers) and a hang (the
# client's reconnect when it ends).
RESTARTS = ("reload", "abandoned", "restarted", "hung")


def _since_reload(chain: list[Node]) -> list[Node]:
    """The part of a history a model run covers: all of it, or what follows the last restart (`RESTARTS`)."""
    reloads = [i for i, n in enumerate(chain) if n.kind in RESTARTS]
    return chain[reloads[-1] + 1:] if reloads else chain


def _model_start(chain: list[Node], params: Params, renumber: dict) -> int | None:
    """Where a history after a page reload can begin as a model run: its first step that leaves one of the
    model's initial clients (fresh at the base level on some server); None if none does."""
    initial = {s.clients[0] for s in fleet.initial_states(params)}
    for i, node in enumerate(chain):
        if node.kind in ("reconnect", "arrive") and renumbered(node.after, renumber) in initial:
            return i
    return None


def _certify_one(name: str, fleets: dict[tuple, Scenario], renumber: dict, leaf: Node, moves: list[Move],
                 meta: dict | None, through_itf: bool) -> tuple[Certificate, list[Node], list[Node]]:
    """The certificate of `leaf`'s history, the reap nodes its run covers, and those before the run's start.

    `fleets`: the certificate fleet by the late round trips added to it
    (``()``: the scenario's own); a history's late round trips add theirs.
    """
    cert = fleets[()]
    full = leaf.chain()
    chain = _since_reload(full)
    reloaded = full[0] is not chain[0]
    before: list[Node] = []
    if reloaded:
        start = _model_start(chain, cert.params, renumber)
        if start is None:
            nodes = [n for n in chain if n.kind == "reaped"]
            records = [{"t": n.t, "server": n.server, "path": n.path, "clients": n.n, "step": None} for n in nodes]
            why = (f"t={chain[0].t} s: after a page reload, a setup given up at its deadline, a rolling restart or "
                   f"a hang, the client's new "
                   f"session begins on s{chain[0].server} at a level other than the base one, and the client is not "
                   "again at the base level before this reap; neither is a protocol step, and the model's clients "
                   "begin at the base level")
            return Certificate(name, tuple(records), None, None, why, True), nodes, []
        before = [n for n in chain[:start] if n.kind == "reaped"]
        chain = chain[start:]
    nodes = [n for n in chain if n.kind == "reaped"]
    records = [{"t": n.t, "server": n.server, "path": n.path, "clients": n.n, "step": None} for n in nodes]
    late = tuple(sorted({n.value for n in chain if _is_late(n, cert.params.rtt)}))
    if late not in fleets:
        fleets[late] = _late_scenario(cert, late)
    cert = fleets[late]
    builder = Builder(cert.params, renumber, records)
    try:
        builder.build(chain, moves, reloaded=reloaded)
    except NotCertified as err:
        return Certificate(name, tuple(records), None, None, str(err), err.inexpressible, late=late), nodes, before
    run = Run(builder.initial, tuple(builder.steps))
    c = Certificate(name, tuple(records), run, None, None, start_t=builder.start_t, late=late)
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
