"""Tests for the ITF (Apalache ADR-015) encoder/decoder in stormcheck.traces.itf."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stormcheck.traces import itf
from stormcheck.traces.itf import Trace, Unserializable, from_itf, to_itf

SAFE = 2**53 - 1

# --- strategies -------------------------------------------------------------

ints = st.one_of(
    st.integers(min_value=-1000, max_value=1000),
    st.integers(min_value=-(2**200), max_value=2**200),  # well past 2**53
    st.sampled_from([SAFE, SAFE + 1, -SAFE, -SAFE - 1, 2**64, -(2**64)]),
)
scalars = st.one_of(ints, st.booleans(), st.text(max_size=8))
# Set elements and map keys must be hashable, so only tuples/frozensets nest there.
hashables = st.recursive(
    scalars,
    lambda h: st.one_of(st.lists(h, max_size=3).map(tuple), st.frozensets(h, max_size=3)),
    max_leaves=10,
)
values = st.recursive(
    hashables,
    lambda v: st.one_of(
        st.lists(v, max_size=4),
        st.lists(v, max_size=4).map(tuple),
        st.dictionaries(hashables, v, max_size=4),
        st.frozensets(hashables, max_size=4),
    ),
    max_leaves=25,
)


def canon(obj):
    return json.dumps(obj, separators=(",", ":"))


# --- value round trips ------------------------------------------------------


@given(values)
def test_round_trip(value):
    encoded = to_itf(value)
    text = json.dumps(encoded)  # must be plain JSON
    decoded = from_itf(json.loads(text))
    assert decoded == value
    # Python's == conflates True and 1; the re-encoding does not.
    assert canon(to_itf(decoded)) == canon(encoded)


@given(values)
def test_encoding_is_json_safe(value):
    def walk(o):
        if isinstance(o, bool) or isinstance(o, str):
            return
        if isinstance(o, int):
            assert -SAFE <= o <= SAFE
        elif isinstance(o, list):
            for x in o:
                walk(x)
        else:
            assert isinstance(o, dict)
            for x in o.values():
                walk(x)

    walk(to_itf(value))


@given(st.frozensets(hashables, max_size=6))
def test_set_order_does_not_depend_on_insertion(s):
    assert canon(to_itf(frozenset(reversed(list(s))))) == canon(to_itf(s))
    assert canon(to_itf(set(s))) == canon(to_itf(s))


@given(st.dictionaries(hashables, ints, max_size=6))
def test_map_order_does_not_depend_on_insertion(d):
    flipped = dict(reversed(list(d.items())))
    assert canon(to_itf(flipped)) == canon(to_itf(d))


def B(n: int) -> dict:
    return {"#bigint": str(n)}


def test_every_integer_is_written_as_a_bigint():
    """ADR-015, revised 2023-09-14: JSON numbers are no longer allowed for integers."""
    for n in (0, 7, -3, SAFE, -SAFE, SAFE + 1, -SAFE - 1, 2**70):
        assert to_itf(n) == B(n)
    assert from_itf(B(-(2**53))) == -(2**53)
    assert from_itf(5) == 5 and from_itf(-2) == -2  # traces written before the revision still read
    assert from_itf(2**70) == 2**70  # lenient: Python parses big numbers exactly
    assert itf.plain_integers({"a": [B(1), {"#tup": [B(-2), "x"]}], "b": True}) == {"a": [1, {"#tup": [-2, "x"]}],
                                                                                   "b": True}


def test_shapes():
    assert to_itf(True) is True
    assert to_itf("x") == "x"
    assert to_itf([1, 2]) == [B(1), B(2)]
    assert to_itf((1, "a")) == {"#tup": [B(1), "a"]}
    assert to_itf(frozenset({3, 1})) == {"#set": [B(1), B(3)]}
    assert to_itf({"b": 1, "a": (2,)}) == {"#map": [["a", {"#tup": [B(2)]}], ["b", B(1)]]}
    assert to_itf({(1, 2): {3}}) == {"#map": [[{"#tup": [B(1), B(2)]}, {"#set": [B(3)]}]]}
    assert to_itf(Unserializable("Nat")) == {"#unserializable": "Nat"}
    assert from_itf({"#unserializable": "Nat"}) == Unserializable("Nat")
    assert from_itf({"#tup": []}) == ()
    assert from_itf({"#set": []}) == frozenset()


# --- records ----------------------------------------------------------------


class Session(NamedTuple):
    client: int
    alive: bool
    peers: frozenset


@dataclasses.dataclass(frozen=True)
class Clock:
    tick: int
    deadline: int
    session: Session


class Phase(enum.Enum):
    UP = "up"
    DOWN = "down"


class Prio(enum.IntEnum):
    LOW = 1


def test_namedtuple_is_record_in_field_order():
    enc = to_itf(Session(client=7, alive=True, peers=frozenset({2, 1})))
    assert enc == {"client": B(7), "alive": True, "peers": {"#set": [B(1), B(2)]}}
    assert list(enc) == ["client", "alive", "peers"]
    assert from_itf(enc) == {"client": 7, "alive": True, "peers": frozenset({1, 2})}


def test_dataclass_is_record_recursively():
    enc = to_itf(Clock(tick=2**60, deadline=3, session=Session(1, False, frozenset())))
    assert enc == {
        "tick": B(2**60),
        "deadline": B(3),
        "session": {"client": B(1), "alive": False, "peers": {"#set": []}},
    }
    assert list(enc) == ["tick", "deadline", "session"]


def test_enum_encodes_its_value():
    assert to_itf(Phase.UP) == "up"
    assert to_itf([Prio.LOW, True]) == [B(1), True]
    assert to_itf(Prio.LOW) == B(1)
    assert to_itf({Phase.DOWN: Phase.UP}) == {"#map": [["down", "up"]]}


def test_records_inside_sets_are_a_clear_decode_error():
    enc = to_itf(frozenset({Session(1, True, frozenset())}))
    with pytest.raises(ValueError, match=r"\$\[0\]: a record cannot be a set element"):
        from_itf(enc)


# --- encode / decode errors -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (1.5, r"cannot encode float at \$ to ITF \(the model is integer-only\)"),
        (None, r"cannot encode NoneType at \$"),
        ([1, (2, None)], r"NoneType at \$\[1\]\[1\]"),
        (Session(1, 0.0, frozenset()), r"float at \$\.alive"),
        ({"k": 2.0}, r"float at \$\['k'\]"),
        (b"raw", r"cannot encode bytes"),
        (Session, r"cannot encode type"),  # a class, not an instance
    ],
)
def test_encode_errors_name_type_and_place(value, pattern):
    with pytest.raises(TypeError, match=pattern):
        to_itf(value)


class Num(enum.Enum):
    ONE = 1


def test_encode_rejects_colliding_map_keys():
    # Num.ONE != 1 in Python, yet both encode to 1: writing both would be lossy.
    with pytest.raises(ValueError, match=r"at \$: two map keys both encode to \{\"#bigint\":\"1\"\}"):
        to_itf({Num.ONE: "a", 1: "b"})
    assert to_itf(frozenset({Num.ONE, 1})) == {"#set": [B(1)]}  # sets just merge


@pytest.mark.parametrize(
    ("obj", "pattern"),
    [
        (1.5, r"float is not an ITF value"),
        (None, r"NoneType is not an ITF value"),
        ({"#bigint": "12a"}, r"malformed '#bigint'"),
        ({"#bigint": " 12"}, r"malformed '#bigint'"),
        ({"#bigint": 12}, r"malformed '#bigint'"),
        ({"#tup": 3}, r"malformed '#tup'"),
        ({"#set": [1], "x": 2}, r"'#set' must have no other keys"),
        ({"#map": [[1]]}, r"\$\[0\]: a #map entry must be a \[key, value\] array"),
        ({"#map": [[1, 2], [1, 3]]}, r"duplicate map key 1"),
        ({"#map": [[[1], 2]]}, r"a list cannot be a set element or map key"),
        ({"#set": [{"#tup": [[1]]}]}, r"a tuple holding a list or record cannot"),
        ({"#frob": 1}, r"unknown ITF form '#frob'"),
        ([1, {"a": [2, 0.5]}], r"at \$\[1\]\.a\[1\]: float"),
    ],
)
def test_decode_errors(obj, pattern):
    with pytest.raises(ValueError, match=pattern):
        from_itf(obj)


# --- the ADR-015 example ----------------------------------------------------

ADR_EXAMPLE = """
{
  "#meta": {"source": "MC_MissionariesAndCannibalsTyped.tla"},
  "vars": ["bank_of_boat", "who_is_on_bank"],
  "states": [
    {"#meta": {"index": 0}, "bank_of_boat": "E", "who_is_on_bank": {"#map": [
      ["E", {"#set": ["c1_OF_PERSON", "c2_OF_PERSON", "m1_OF_PERSON", "m2_OF_PERSON"]}],
      ["W", {"#set": []}]]}},
    {"#meta": {"index": 1}, "bank_of_boat": "W", "who_is_on_bank": {"#map": [
      ["E", {"#set": ["c1_OF_PERSON", "m1_OF_PERSON"]}],
      ["W", {"#set": ["c2_OF_PERSON", "m2_OF_PERSON"]}]]}},
    {"#meta": {"index": 2}, "bank_of_boat": "E", "who_is_on_bank": {"#map": [
      ["E", {"#set": ["c1_OF_PERSON", "m1_OF_PERSON", "m2_OF_PERSON"]}],
      ["W", {"#set": ["c2_OF_PERSON"]}]]}},
    {"#meta": {"index": 3}, "bank_of_boat": "W", "who_is_on_bank": {"#map": [
      ["E", {"#set": ["c1_OF_PERSON"]}],
      ["W", {"#set": ["c2_OF_PERSON", "m1_OF_PERSON", "m2_OF_PERSON"]}]]}},
    {"#meta": {"index": 4}, "bank_of_boat": "E", "who_is_on_bank": {"#map": [
      ["E", {"#set": ["c1_OF_PERSON", "c2_OF_PERSON"]}],
      ["W", {"#set": ["m1_OF_PERSON", "m2_OF_PERSON"]}]]}},
    {"#meta": {"index": 5}, "bank_of_boat": "W", "who_is_on_bank": {"#map": [
      ["E", {"#set": []}],
      ["W", {"#set": ["c1_OF_PERSON", "c2_OF_PERSON", "m1_OF_PERSON", "m2_OF_PERSON"]}]]}}
  ]
}
"""

C1, C2, M1, M2 = "c1_OF_PERSON", "c2_OF_PERSON", "m1_OF_PERSON", "m2_OF_PERSON"
EAST = [{C1, C2, M1, M2}, {C1, M1}, {C1, M1, M2}, {C1}, {C1, C2}, set()]
ALL = {C1, C2, M1, M2}


def adr_trace() -> Trace:
    states = [
        {
            "#meta": {"index": i},
            "bank_of_boat": "EW"[i % 2],
            # W listed first on purpose: maps are written sorted by key.
            "who_is_on_bank": {"W": frozenset(ALL - east), "E": frozenset(east)},
        }
        for i, east in enumerate(EAST)
    ]
    return Trace(
        meta={"source": "MC_MissionariesAndCannibalsTyped.tla"},
        vars=("bank_of_boat", "who_is_on_bank"),
        states=tuple(states),
    )


def test_adr_example_exact_json():
    expected = json.loads(ADR_EXAMPLE)
    # Key order matters too, so compare serialized text, not just dict equality.
    assert json.dumps(adr_trace().to_json()) == json.dumps(expected)


def test_adr_example_reads_back():
    trace = Trace.from_json(json.loads(ADR_EXAMPLE))
    assert trace == adr_trace()
    assert trace.states[3]["who_is_on_bank"] == {"E": frozenset({C1}), "W": frozenset({C2, M1, M2})}
    assert trace.params == () and trace.loop is None


def test_small_file_exact_text(tmp_path):
    trace = Trace(
        meta={"tool": "stormcheck"},
        params=["N"],
        vars=["up"],
        states=[{"N": 2, "up": frozenset({(1, True)})}, {"#meta": {"i": 1}, "up": frozenset()}],
        loop=1,
    )
    path = tmp_path / "t.itf.json"
    trace.write(path)
    assert path.read_text() == (
        '{\n  "#meta": {\n    "tool": "stormcheck"\n  },\n  "params": [\n    "N"\n  ],\n'
        '  "vars": [\n    "up"\n  ],\n  "states": [\n    {\n      "N": {\n        "#bigint": "2"\n      },\n'
        '      "up": {\n        "#set": [\n          {\n            "#tup": [\n              {\n'
        '                "#bigint": "1"\n              },\n              true\n            ]\n'
        '          }\n        ]\n      }\n    },\n'
        '    {\n      "#meta": {\n        "i": 1\n      },\n      "up": {\n        "#set": []\n'
        '      }\n    }\n  ],\n  "loop": 1\n}\n'
    )
    assert Trace.read(path) == Trace(
        meta={"tool": "stormcheck"},
        params=("N",),
        vars=("up",),
        states=({"N": 2, "up": frozenset({(1, True)})}, {"#meta": {"i": 1}, "up": frozenset()}),
        loop=1,
    )


# --- trace validation -------------------------------------------------------


def clients_json(n_states=5, **extra):
    states = [{"clients": {"#set": list(range(i))}, "epoch": i} for i in range(n_states)]
    return {"#meta": {}, "vars": ["clients", "epoch"], "states": states, **extra}


def test_loop_valid_indices_round_trip(tmp_path):
    for loop in (None, 0, 4):
        trace = Trace.from_json(clients_json(loop=loop) if loop is not None else clients_json())
        assert trace.loop == loop
        trace.write(tmp_path / "x.itf.json")
        assert Trace.read(tmp_path / "x.itf.json") == trace
        assert ("loop" in trace.to_json()) == (loop is not None)


@pytest.mark.parametrize(
    ("loop", "n", "pattern"),
    [
        (7, 5, r"^loop index 7 is out of range for 5 states$"),
        (5, 5, r"^loop index 5 is out of range for 5 states$"),
        (-1, 5, r"^loop index -1 is out of range for 5 states$"),
        (0, 0, r"^loop index 0 is out of range for 0 states$"),
        (True, 5, r"loop must be an integer index, got True"),
        ("1", 5, r"loop must be an integer index, got '1'"),
    ],
)
def test_loop_out_of_range(loop, n, pattern):
    with pytest.raises(ValueError, match=pattern):
        Trace.from_json(clients_json(n, loop=loop))
    with pytest.raises(ValueError, match=pattern):
        Trace(meta={}, vars=(), states=({},) * n, loop=loop)


def test_state_lacks_var():
    obj = clients_json()
    del obj["states"][3]["clients"]
    with pytest.raises(ValueError, match=r"^state 3 lacks var 'clients'$"):
        Trace.from_json(obj)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda o: o.pop("vars"), r"the trace lacks the field 'vars'"),
        (lambda o: o.pop("states"), r"the trace lacks the field 'states'"),
        (lambda o: o.update(vars="clients"), r"vars must be a list of strings"),
        (lambda o: o.update(vars=["clients", "clients", "epoch"]), r"duplicate name 'clients'"),
        (lambda o: o.update(vars=["#meta"]), r"bad or duplicate name '#meta'"),
        (lambda o: o.update(states={}), r"states must be a list"),
        (lambda o: o["states"].append([]), r"state 5 must be an object, got list"),
        (lambda o: o["states"][2].update(ghost=1), r"state 2 has 'ghost', which is not in vars"),
        (lambda o: o["states"][1].update(epoch=0.5), r"at states\[1\]\.epoch: float"),
        (lambda o: o["states"][0].update({"#meta": 3}), r"state 0: #meta must be an object"),
        (lambda o: o.update({"#meta": []}), r"#meta must be an object"),
        (lambda o: o.update(params=["N"]), r"state 0 lacks param 'N'"),
        (lambda o: o.update(params=["epoch"]), r"both vars and params"),
        (lambda o: o.update(lasso=1), r"unknown trace field 'lasso'"),
    ],
)
def test_from_json_errors(mutate, pattern):
    obj = clients_json()
    mutate(obj)
    with pytest.raises(ValueError, match=pattern):
        Trace.from_json(obj)


def test_from_json_rejects_non_object():
    with pytest.raises(ValueError, match="a trace must be a JSON object, got list"):
        Trace.from_json([])


def test_params_only_required_in_first_state():
    obj = clients_json(3, params=["N"])
    obj["states"][0]["N"] = 3
    trace = Trace.from_json(obj)
    assert trace.params == ("N",)
    assert list(trace.to_json()) == ["#meta", "params", "vars", "states"]
    assert list(trace.to_json()["states"][0]) == ["N", "clients", "epoch"]


def test_constructor_stores_tuples():
    trace = Trace(meta={}, vars=["a"], states=[{"a": 1}], params=[])
    assert trace.vars == ("a",) and trace.states == ({"a": 1},) and trace.params == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        trace.loop = 0  # type: ignore[misc]


# --- files ------------------------------------------------------------------


def test_read_errors_name_the_file(tmp_path):
    bad_json = tmp_path / "bad.itf.json"
    bad_json.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.itf\.json: not JSON: Expecting property name"):
        Trace.read(bad_json)
    bad_trace = tmp_path / "lacks.itf.json"
    obj = clients_json()
    del obj["states"][3]["clients"]
    bad_trace.write_text(json.dumps(obj))
    with pytest.raises(ValueError, match=r"lacks\.itf\.json: state 3 lacks var 'clients'"):
        Trace.read(str(bad_trace))
    with pytest.raises(FileNotFoundError, match="missing.itf.json"):
        Trace.read(tmp_path / "missing.itf.json")


@settings(max_examples=40)  # real file I/O per example
@given(st.lists(st.dictionaries(hashables, values, max_size=3), max_size=3))
def test_write_is_deterministic(tmp_path_factory, states_values):
    d = tmp_path_factory.mktemp("det")
    states = [{"v": v} for v in states_values]
    Trace(meta={"m": 1}, vars=["v"], states=states).write(d / "a.itf.json")
    # Same values, rebuilt with reversed insertion order.
    again = [{"v": dict(reversed(list(v.items())))} for v in states_values]
    Trace(meta={"m": 1}, vars=["v"], states=again).write(d / "b.itf.json")
    assert (d / "a.itf.json").read_bytes() == (d / "b.itf.json").read_bytes()
    assert Trace.read(d / "a.itf.json").states == tuple(states)


def test_write_leaves_no_temp_files(tmp_path):
    adr_trace().write(tmp_path / "t.itf.json")
    adr_trace().write(str(tmp_path / "t.itf.json"))  # overwrite, str path
    assert os.listdir(tmp_path) == ["t.itf.json"]
    assert Trace.read(tmp_path / "t.itf.json") == adr_trace()


def test_write_respects_umask(tmp_path):
    old = os.umask(0o027)
    try:
        adr_trace().write(tmp_path / "t.itf.json")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "t.itf.json").st_mode & 0o777 == 0o640


@pytest.mark.parametrize("fail_in", ["fsync", "replace"])
def test_failed_write_keeps_previous_file(tmp_path, monkeypatch, fail_in):
    path = tmp_path / "t.itf.json"
    adr_trace().write(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(itf.os, fail_in, boom)
    new = Trace(meta={}, vars=["x"], states=[{"x": 1}])
    with pytest.raises(OSError, match="disk on fire"):
        new.write(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.itf.json"]


def test_unencodable_trace_never_touches_disk(tmp_path):
    path = tmp_path / "t.itf.json"
    adr_trace().write(path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"float at states\[0\]\.x"):
        Trace(meta={}, vars=["x"], states=[{"x": 0.5}]).write(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.itf.json"]
