"""The candidate regions of `z3_synth.safe_region`, encoded: readable sufficient conditions as Z3 formulas.

Each candidate is a guess, stated in the stack's own rules (hold, interval,
RTT, cutoff multipliers, judges' bounds), that `safe_region` then proves or
rejects. The encoding stands apart from the search because it is where the
stack's rules become text and formulas, and grows with each rule a stack adds.
"""

from __future__ import annotations

import z3

from .z3_encoding import Encoding, ceil_times
from .z3_proof import spaced

__all__: list[str] = []  # nothing public: `z3_synth.safe_region` reads `_candidates`


def _candidates(enc: Encoding) -> list[tuple[str, z3.BoolRef, list]]:
    """Readable sufficient conditions: (text, formula, [(lhs, rhs), ...]) with each lhs < rhs.

    The age at which a refresh lands is the hold (T for a held connect, 0 for
    a ping answered at once: `Heartbeat.hold`) plus the interval plus the
    RTT (plus the retry delay for a retry on the old id); the earliest cutoff
    is the smallest multiplier of the stack's reaping paths times T, plus its
    interval term (``interval_multiplier x I``). Judges beside the servers'
    add their bounds (`_judge_bounds`). Under a minimum spacing a lower bound
    joins each form. Each candidate is only a guess until Z3 proves it
    (`safe_region`).
    """
    p = enc.params
    hb = p.heartbeat
    # The smallest multiplier gives the earliest cutoff; a publish that only
    # drops a queue (the published engine) reaps nothing.
    reaping = [path for path in hb.paths if not (path == "publish" and p.publish_expired == "drop-queue")]
    m = min(p.multiplier(path) for path in reaping or hb.paths)
    k = hb.interval_multiplier
    mtxt, ktxt = f"{float(m):g}", f"{float(k):g}"
    gap = enc.gap
    gap_txt = " + clock gap" if enc.ranges.get("skew") or p.max_skew_gap else ""
    held = hb.hold == "timeout"

    def cutoff(t, i, name=""):
        if not k:
            return ceil_times(m, t), f"ceil({mtxt} x T{name})"
        # ceil(m x T + k x I) over integers: one fraction over the common denominator.
        d = m.denominator * k.denominator
        num = m.numerator * k.denominator * t + k.numerator * m.denominator * i
        return (num + d - 1) / d, f"ceil({mtxt} x T{name} + {ktxt} x I{name})"

    def forms(late, late_txt):
        """Forms 1-3, a refresh landing `late` after the hold, interval and RTT."""
        def refresh(i, h, name=""):
            return (h + i + enc.rtt_max + gap + late,
                    (f"T{name} + " if held else "") + f"I{name} + rtt_max{gap_txt}{late_txt}")

        out = []
        # 1. Every server stays at the base level (static designs).
        (lhs, ltxt), (rhs, rtxt) = refresh(enc.I[0], enc.H[0], "0"), cutoff(enc.T[0], enc.I[0], "0")
        out.append((f"{ltxt} < {rtxt}", lhs < rhs, [(lhs, rhs)]))
        if len(enc.T) > 1:
            # 2. Level by level (a session judged by the level it was held for).
            pairs = [(refresh(i, h)[0], cutoff(t, i)[0]) for t, i, h in zip(enc.T, enc.I, enc.H)]
            out.append((f"for every level l: {refresh(0, 0, '_l')[1]} < {cutoff(0, 0, '_l')[1]}",
                        z3.And([a < b for a, b in pairs]), pairs))
            # 3. The largest hold against the smallest timeout (reapers judge by their own server).
            if not k:
                lhs = enc.hold_max + enc.i_max + enc.rtt_max + gap + late  # hold_max: 0 for a ping answered at once
                rhs = ceil_times(m, enc.t_min)
                what = ("max T + " if held else "") + f"max I + rtt_max{gap_txt}{late_txt} < ceil({mtxt} x min T)"
                out.append((what, lhs < rhs, [(lhs, rhs)]))
        return out

    out = forms(0, "")
    if p.after_drop == "same-id":
        # A client whose socket dropped retries on its old id (Faye's stock
        # client): its session keeps ageing through the retry delay (`retry`
        # then the RTT: `Params.retry_delay`), and the retry's connect meets
        # the existence check (`rules_clients._connect`). A drop can come just before
        # the refresh would have landed.
        out += forms(p.retry + enc.rtt_max, f" + retry {p.retry} + rtt_max")
    if extra := _judge_bounds(enc, m, k):
        # Judges beside the servers' reapers: each form again with their
        # bounds, offered first (at a point where both hold, the region names
        # them). Their pairs come first, so the point just outside is their
        # cut. The servers' forms alone stay, to show they do not suffice.
        jtext, jformula, jpairs = extra
        out = [(f"{jtext} and {text}", z3.And(jformula, formula), [*jpairs, *pairs])
               for text, formula, pairs in out] + out
    if hb.min_spacing:
        # 4. A lower bound as well: under a minimum spacing the server closes a
        # connection whose heartbeats come too close (`z3_proof.spaced`). Each
        # upper-bound form above, with the heartbeats spaced; the spacing's
        # pair comes first, so the point just outside crosses the lower bound.
        ms = hb.min_spacing
        lhs = enc.i_min + enc.rtt_min
        itxt = "I0" if len(enc.I) == 1 else "min I"
        floor = (f"{itxt} + rtt_min >= {ms}", spaced(enc), (enc.num(ms - 1), lhs))
        out += [(f"{floor[0]} and {text}", z3.And(floor[1], formula), [floor[2], *pairs])
                for text, formula, pairs in list(out)]
    return out


def _judge_bounds(enc: Encoding, m, k) -> tuple[str, z3.BoolRef, list] | None:
    """The extra judges' bounds (`Params.judges`): (text, formula, pairs), None when none adds one.

    A judge reads the session's age itself (`fleet.expired_judges`: no clock
    offset), which a heartbeat resets through the proxy (the scenario format
    refuses a proxy that does not count pings): the refresh lands at the
    hold plus the interval plus the RTT, as for the servers' reapers. A
    proxy's cutoff is its fixed idle timeout, whatever the level; a client's
    is ``m x T + k x I`` of the level told at its handshake. On one level, a
    client judge whose multipliers are at least the servers' cuts no earlier
    than the servers' form, which already bounds the refresh: no bound of its
    own (on several, the handshake's level and the servers' may differ).
    """
    p = enc.params
    held = p.heartbeat.hold == "timeout"  # the scenario format refuses judges of a held heartbeat
    one = len(enc.I) == 1
    name = "0" if one else "_l"
    refresh = (f"T{name} + " if held else "") + f"I{name} + rtt_max"
    texts, pairs = [], []
    for judge in p.judges:
        if judge.source == "fixed":
            # The largest refresh against the one idle timeout.
            largest = refresh if one else ("max T + " if held else "") + "max I + rtt_max"
            texts.append(f"{largest} < {judge.timeout} ({judge.name}'s idle timeout)")
            pairs.append((enc.hold_max + enc.i_max + enc.rtt_max, enc.num(judge.timeout)))
            continue
        jm, jk = judge.multiplier, judge.interval_multiplier
        if one and jm >= m and jk >= k:
            continue
        cut = f"ceil({float(jm):g} x T{name}" + (f" + {float(jk):g} x I{name})" if jk else ")")
        texts.append(("" if one else "for every level l: ") + f"{refresh} < {cut} ({judge.name}'s judge)")
        pairs += [(h + i + enc.rtt_max, enc.judge_age(judge, enc.num(level)))
                  for level, (h, i) in enumerate(zip(enc.H, enc.I))]
    if not pairs:
        return None
    return " and ".join(texts), z3.And([a < b for a, b in pairs]), pairs
