"""gRPC's keepalive enforcement on the real grpcio 1.76: a server's lower bound on ping spacing.

The server closes a client that pings sooner than its minimum more than
``max_ping_strikes`` times (GOAWAY ENHANCE_YOUR_CALM "too_many_pings"). The
runs take the settings directly, in model seconds, as the two presets will
state them: a client keepalive of 10 s against the server's default minimum
of 300 s is closed at its 4th ping; a keepalive equal to the minimum is
never struck (its control), unless the server keeps C-core's default
keepalive_permit_without_calls 0, which judges an idle connection by two
hours. A last run shows what the client does after a close: it doubles its
keepalive time, and here that meets the minimum. Under CI
(CI=true) a missing grpcio fails; elsewhere the test skips naming what to
install.
"""

from __future__ import annotations

import os

import pytest

from stormcheck.conformance.stacks.grpc_stack import STACK, GrpcStack
from stormcheck.conformance.stacks.harness import Config
from stormcheck.conformance.stacks.runs import spacing_run
from stormcheck.model.params import Params

# Real servers on a scaled clock, or real time: run alone (bin/test's second part).
pytestmark = pytest.mark.realtime

PARAMS = Params(retry=1)  # the client reconnects one model second after a close


def _need() -> None:
    missing = STACK.missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{STACK.stack}: missing under CI: {missing}")
        pytest.skip(f"{STACK.stack}: install {missing}")


def _server(out, ev: str) -> list[dict]:
    return [e.fields for e in out.events if e.proc.startswith("server") and e.ev == ev]


def _client(out, ev: str) -> list[dict]:
    return [e.fields for e in out.events if e.proc.startswith("client") and e.ev == ev]


def _pings_of(out, conn: str) -> list[dict]:
    return [p for p in _server(out, "ping") if p["conn"] == conn]


def test_a_keepalive_below_the_minimum_is_closed_at_the_fourth_ping():
    """Keepalive 10 s, minimum 300 s, 2 strikes: ping 1 is free, 2-3 are strikes, 4 gets the GOAWAY."""
    _need()
    out = spacing_run(STACK.at_scale(0.1), PARAMS, Config(timeout=20, interval=10), min_spacing=300, strikes=2)
    assert out.real == "violated", out.detail
    closed = [c for c in _server(out, "close") if c["judged"]]
    assert [c["why"] for c in closed] == ["too_many_pings"], out.detail
    pings = _pings_of(out, closed[0]["conn"])
    assert [p["early"] for p in pings] == [False, True, True, True]
    assert [p["strikes"] for p in pings] == [0, 1, 2, 3]
    goaway = _client(out, "goaway")
    assert goaway[:1] == [{"ev": "goaway", "code": "ENHANCE_YOUR_CALM", "why": "too_many_pings", "keepalive_ms": 1000}]
    assert _client(out, "close")[0] == {"ev": "close", "judged": False, "why": "too_many_pings"}
    assert len(_client(out, "open")) == 2  # it connects again
    assert "at its ping 4 (3 early; too_many_pings)" in out.detail
    assert out.seconds < 15


def test_a_keepalive_equal_to_the_minimum_is_never_struck():
    """Keepalive 300 s = minimum 300 s: the client's spacing is its keepalive plus the ack, never less."""
    _need()
    stack = STACK.at_scale(GrpcStack.scale_for(300))
    out = spacing_run(stack, PARAMS, Config(timeout=300, interval=300), min_spacing=300, strikes=2)
    assert out.real == "holds", out.detail
    pings = _server(out, "ping")
    assert len(pings) >= 5 and not any(p["early"] for p in pings), pings
    assert _server(out, "close") == [] and _client(out, "goaway") == []
    assert out.seconds < 15


def test_a_default_server_judges_an_idle_connection_by_two_hours():
    """Keepalive 300 s = minimum 300 s, but the server without keepalive_permit_without_calls (its default)."""
    _need()
    stack = STACK.at_scale(GrpcStack.scale_for(300))
    out = spacing_run(stack, PARAMS, Config(timeout=300, interval=300), min_spacing=300, strikes=2,
                      permit_without_calls=False)
    assert out.real == "violated", out.detail
    assert "at its ping 4 (3 early; too_many_pings)" in out.detail
    assert all(p["idle"] for p in _server(out, "ping"))
    assert out.seconds < 15


def test_after_too_many_pings_the_client_doubles_its_keepalive():
    """Keepalive 10 s against 20 s: closed at ping 4; the next connection pings every 20 s and holds."""
    _need()
    out = spacing_run(STACK.at_scale(0.1), PARAMS, Config(timeout=20, interval=10), min_spacing=20, strikes=2,
                      pings=10)
    closed = [c for c in _server(out, "close") if c["judged"]]
    assert len(closed) == 1, out.detail
    opens = [o["conn"] for o in _server(out, "open")]
    assert len(opens) == 2, opens
    second = _pings_of(out, opens[1])
    gaps = [b["at_ms"] - a["at_ms"] for a, b in zip(second, second[1:])]
    assert len(second) >= 2 and all(2000 <= g <= 2100 for g in gaps), second  # 20 model s at 0.1
    assert not any(p["early"] for p in second)
    assert out.seconds < 15


def test_a_keepalive_under_the_clients_one_second_floor_is_refused():
    with pytest.raises(ValueError, match="at most once a second"):
        STACK.at_scale(1 / 300).keepalive_ms(Config(timeout=20, interval=10))
    assert STACK.at_scale(GrpcStack.scale_for(10)).keepalive_ms(Config(timeout=20, interval=10)) == 1000


def test_strikes_zero_is_refused_with_a_minimum():
    """C-core's max_ping_strikes 0 is "no limit", not "the first early ping closes"."""
    with pytest.raises(ValueError, match="means no limit"):
        STACK.start_server(None, "server0", 0, Config(timeout=20, interval=10), min_spacing=300, strikes=0)
