"""The fleet's parameters as terms of the Z3 encoding.

Every parameter the encoding reads (each level's T / I, the clock offsets,
the largest RTT, the fault durations, and what follows from them) is a term:
pinned to the scenario's value, or, for the keys of a scenario's
``[ranges]`` (`RANGED`), a symbolic constant within its range, with the
advice adjuster's formula over them (`checkers.z3_encoding`, "Parameters").
This is the one part of the encoding that reads the ranges and the time
unit; it is a base class of `Encoding`, apart from the protocol's rules.
"""

from __future__ import annotations

from typing import Any

import z3

from stormcheck.model.params import TIME_UNITS

from .z3_records import _in, _max, _min, select

__all__ = ["ParamTerms", "RANGED"]

# The [ranges] keys the encoding can make symbolic. `servers` is a loop over
# fleets, not a term; `clients` is covered by the one-client system.
RANGED = ("timeout", "interval", "rtt_max", "skew", "load_ms", "loss_duration", "cut_duration")


class ParamTerms:
    """The parameter terms of an `Encoding` (a base class of it: built by `_build_params`)."""

    # ------------------------------------------------------------ parameters

    def _build_params(self) -> None:
        p, r = self.params, self.ranges
        self.base: dict[str, Any] = {}  # key -> the symbolic constant (ranged keys only)

        def sym(key: str, name: str, point: int):
            if key in r:
                v = self.var(name)
                self.base.setdefault(key, []).append(v)
                return v
            return self.num(point)

        t0, i0 = sym("timeout", "T0", p.t0), sym("interval", "I0", p.i0)
        self.T, self.I = [], []
        top = len(p.levels) - 1
        for l, level in enumerate(p.levels):
            if l > 0 and p.rollout is not None:
                # Configuration B is the rollout's own, not an offset from A: pinned.
                self.T.append(self.var(f"T_{l}"))
                self.I.append(self.var(f"I_{l}"))
                continue
            if l == top and "load_ms" in r:
                avg = sym("load_ms", "load_ms", level.avg_ms)
                over = z3.If(avg > self.threshold_ms, avg - self.threshold_ms, 0)
                # adjuster_advice with JavaScript rounding: round(1.6 * over / 1000)
                # = floor((16 * over + 5000) / 10000), round(over / 2500) likewise;
                # whole seconds, counted in the fleet's unit.
                per = TIME_UNITS[p.unit]
                dt, di = per * ((16 * over + 5000) / 10000), per * ((2 * over + 2500) / 5000)
            else:
                dt, di = level.timeout - p.t0, level.interval - p.i0
            if "timeout" in r or "interval" in r or (l == top and "load_ms" in r):
                self.T.append(t0 + dt)
                self.I.append(i0 + di)
            else:
                # Kept as variables pinned by param_constraints, as before.
                self.T.append(self.var(f"T_{l}"))
                self.I.append(self.var(f"I_{l}"))
        self._pins = [(t, lv.timeout) for t, lv in zip(self.T, p.levels) if z3.is_const(t)] + [
            (i, lv.interval) for i, lv in zip(self.I, p.levels) if z3.is_const(i)]
        self.off = [sym("skew", f"skew_{s}", p.offset(s)) for s in range(p.servers)]
        self.rtt_max = sym("rtt_max", "rtt_max", p.rtt_max)
        self.loss_duration = sym("loss_duration", "loss_duration", p.faults.loss_duration)
        self.cut_duration = sym("cut_duration", "cut_duration", p.faults.cut_duration)
        self.retry_wait = p.retry + self.rtt_max  # what a dropped client waits before retrying
        self.t_max, self.t_min, self.i_max = _max(self.T), _min(self.T), _max(self.I)
        self.i_min = _min(self.I)
        # How long a server holds a heartbeat, per level (Params.hold): T, or 0 for a ping answered at once.
        self.H = list(self.T) if p.heartbeat.hold == "timeout" else [self.num(0)] * len(self.T)
        self.hold_max = _max(self.H)
        # The smallest RTT choice (`rtt_choices`: one below rtt_max counts only while it is below it).
        self.rtt_min = self.num(min(p.rtt)) if "rtt_max" not in r or len(p.rtt) == 1 else z3.If(
            self.num(p.rtt[0]) < self.rtt_max, self.num(p.rtt[0]), self.rtt_max)
        self.gap = _max(self.off) - _min(self.off) if "skew" in r else self.num(p.max_skew_gap)
        if r:
            self.age_cap = self._age_cap()
        else:
            self.age_cap = self.num(p.age_cap)

    def _age_cap(self):  # Params.age_cap, over symbolic levels
        p, n = self.params, range(len(self.T))
        in_use = p.heartbeat.interval_term == "in-use"
        cuts = [self.cutoff_age(path, self.T[i], self.I[j]) for path in p.heartbeat.paths for i in n
                for j in (n if in_use else (i,))]
        for judge in p.judges:
            cuts += [self.judge_age(judge, self.num(i)) for i in n]
        cuts += [self.num(p.heartbeat.min_spacing), self.num(p.heartbeat.resume_window)]
        return _max(cuts) + self.gap + 1

    def cutoff_age(self, path: str, timeout, interval):
        """The smallest whole age reaper `path` reaps at: ``ceil(m x T + k x I)`` (Params.reap_ages)."""
        m, k = self.params.multiplier(path), self.params.heartbeat.interval_multiplier
        den = m.denominator * k.denominator
        total = m.numerator * k.denominator * timeout + k.numerator * m.denominator * interval
        return (total + den - 1) / den

    def judge_age(self, judge, level):
        """The smallest whole age an extra judge closes a connection at, for a session told `level`."""
        if judge.source == "fixed":
            return self.num(judge.timeout)
        m, k = judge.multiplier, judge.interval_multiplier
        den = m.denominator * k.denominator
        total = m.numerator * k.denominator * select(self.T, level) + k.numerator * m.denominator * select(self.I, level)
        return (total + den - 1) / den

    def hold(self, level):  # Params.hold
        return select(self.H, level)

    def rtt_choices(self, value) -> z3.BoolRef:
        """`value` is one of the RTT choices (`concrete_config`: the largest replaced by ``rtt_max``)."""
        if "rtt_max" not in self.ranges:
            return _in(value, self.params.rtt)
        lower = [z3.And(value == x, x < self.rtt_max) for x in self.params.rtt[:-1]]
        return z3.Or([value == self.rtt_max] + lower)

    def param_constraints(self) -> z3.BoolRef:
        """Pin each unranged level's T/I to the scenario's values; keep ranged ones in range."""
        cs = [t == v for t, v in self._pins]
        for key, terms in self.base.items():
            lo, hi = self.ranges[key]
            cs += [z3.And(v >= lo, v <= hi) for v in terms]
        if "load_ms" in self.ranges and len(self.params.levels) > 1:
            # The highest level stays above the one below it (scenario_ranges.py checks this too).
            cs.append(self.base["load_ms"][0] > self.params.levels[-2].avg_ms)
        return z3.And(cs) if cs else self.truth(True)

    def param_values(self, model: z3.ModelRef) -> dict:
        """The ranged parameters' values in `model`, as `concrete_config` takes them."""
        out = {}
        for key, terms in self.base.items():
            vals = [model.eval(v, model_completion=True).as_long() for v in terms]
            out[key] = vals if key == "skew" else vals[0]
        return out
