"""Scenario files: presets load, values land in Params, every mistake is named."""

import dataclasses
import doctest
import inspect
import json
import textwrap
from fractions import Fraction

import pytest

from stormcheck.model import scenario as scenario_module
from stormcheck.model import scenario_files
from stormcheck.model.params import DESIGNS, Bounds, Design, Faults, Level, Params, adjuster_advice
from stormcheck.model.scenario import (
    ScenarioError,
    list_presets,
    load_scenario,
    preset_names,
    scenario_from_dict,
)

PRESETS = ["gitter-2015", "gitter-2015-3x3", "gitter-2015-published", "static-45"]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ------------------------------------------------------------------- presets


def test_preset_names():
    assert preset_names() == PRESETS


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads(name):
    s = load_scenario(name)
    assert s.name == name  # the file name and [scenario] name agree
    assert s.source == f"preset:{name}"
    assert s.description
    assert load_scenario(f"preset:{name}") == s  # a stored source loads back


def test_list_presets_sorted_by_name():
    assert [s.name for s in list_presets()] == sorted(PRESETS)


def test_gitter_2015_values():
    s = load_scenario("gitter-2015")
    p = s.params
    assert (p.servers, p.clients, p.t0, p.i0, p.rtt, p.retry, p.skew) == (3, 1, 45, 1, (0, 2), 5, ())
    assert p.levels == (Level(0, 45, 1), Level(40000, 101, 15))
    assert (p.load_servers, p.load_trigger) == ((), "reconnects")
    assert (p.publish_mult, p.gc_mult) == (Fraction(8, 5), Fraction(2))
    assert p.design == DESIGNS["per-server"]
    assert p.faults == Faults(server_loss=1, loss_duration=60, loss_servers=(), client_crash=1,
                              client_cut=0, cut_duration=120)
    assert s.bounds == Bounds(max_states=2_000_000, max_seconds=600.0, max_depth=0)


def test_gitter_2015_3x3_values():
    s = load_scenario("gitter-2015-3x3")
    base = load_scenario("gitter-2015").params
    assert s.params == dataclasses.replace(base, clients=3, rtt=(2,))
    assert s.bounds.max_depth == 12


def test_static_45_values():
    p = load_scenario("static-45").params
    assert (p.servers, p.clients, p.rtt, p.levels) == (3, 2, (2,), (Level(0, 45, 1),))
    assert p.design == DESIGNS["off"]
    assert (p.faults.server_loss, p.faults.client_crash, p.faults.client_cut) == (1, 1, 1)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("design", list(DESIGNS))
def test_each_named_design_applies(preset, design):
    base = load_scenario(preset)
    s = base.with_design(design)
    assert s.params == base.params.with_design(DESIGNS[design])
    assert s.config["scenario"]["design"] == design
    assert base.config["scenario"]["design"] != design or s == base
    assert load_scenario(preset, design=design) == s
    assert scenario_from_dict(s.config, "stored") == s


def test_unknown_design_override_lists_designs():
    with pytest.raises(ScenarioError) as info:
        load_scenario("gitter-2015", design="global")
    msg = str(info.value)
    assert "preset:gitter-2015" in msg and '"global"' in msg
    assert all(name in msg for name in DESIGNS)


def test_custom_is_not_an_override():
    with pytest.raises(ScenarioError, match=r"\[design\] table"):
        load_scenario("gitter-2015").with_design("custom")


# ---------------------------------------------------------- defaults, round trip


def test_defaults_are_the_parameter_defaults(tmp_path):
    s = load_scenario(str(write(tmp_path, "min.toml", '[scenario]\nname = "min"\n')))
    assert s.params == Params()
    assert s.bounds == Bounds()
    assert s.description == ""
    threshold = inspect.signature(adjuster_advice).parameters["threshold_ms"].default
    assert s.config["load"]["threshold_ms"] == threshold


def test_config_is_normalised(tmp_path):
    s = load_scenario(str(write(tmp_path, "n.toml", """
        [scenario]
        name = "n"
        [protocol]
        rtt = [3, 0, 1]
        [faults]
        loss_servers = [2, 0]
    """)))
    assert s.config["protocol"]["rtt"] == [0, 1, 3]
    assert s.params.rtt == (0, 1, 3)
    assert s.config["faults"]["loss_servers"] == [0, 2]
    assert set(s.config) == {"scenario", "topology", "protocol", "load", "faults", "search"}
    assert s.config["topology"] == {"servers": 3, "clients": 1}


@pytest.mark.parametrize("preset", PRESETS)
def test_config_round_trip(preset):
    s = load_scenario(preset)
    again = scenario_from_dict(s.config, "elsewhere")
    assert again == s and again.config == s.config and again.source == "elsewhere"
    # A trace stores the config as JSON: that must rebuild it exactly too.
    assert scenario_from_dict(json.loads(json.dumps(s.config)), "trace") == s
    hash(s)  # usable as a dict key despite holding a dict


def test_scenario_from_dict_does_not_alias_its_input():
    cfg = {"scenario": {"name": "x"}, "protocol": {"rtt": [2, 0]}}
    s = scenario_from_dict(cfg, "dict")
    assert cfg == {"scenario": {"name": "x"}, "protocol": {"rtt": [2, 0]}}
    s.config["protocol"]["rtt"].append(9)
    assert scenario_from_dict(cfg, "dict").config["protocol"]["rtt"] == [0, 2]


CUSTOM = """
    [scenario]
    name = "mine"
    design = "custom"
    [topology]
    servers = 2
    clients = 2
    [protocol]
    skew = [0, 3]
    publish_multiplier = 1.5
    [load]
    levels_ms = [1000, 10000]
    servers = [1]
    trigger = "free"
    [design]
    name = "fleet-slow"
    tuner = "fleet"
    propagation_delay = 30
    judge = "session"
    record = "handshake"
    session_paths = "all-but-gc"
    [search]
    max_seconds = 2.5
"""


def test_custom_design(tmp_path):
    s = load_scenario(str(write(tmp_path, "mine.toml", CUSTOM)))
    assert s.design == Design("fleet-slow", tuner="fleet", propagation_delay=30, judge="session",
                              record="handshake", reply_advice="reply", session_paths="all-but-gc")
    p = s.params
    assert (p.servers, p.clients, p.skew, p.load_servers, p.load_trigger) == (2, 2, (0, 3), (1,), "free")
    assert p.levels == (Level(1000, 45, 1), Level(10000, 53, 3))
    assert p.publish_mult == Fraction(3, 2)
    assert s.bounds.max_seconds == 2.5
    assert scenario_from_dict(s.config, "x") == s
    named = s.with_design("per-server")
    assert "design" not in named.config and named.design == DESIGNS["per-server"]
    assert scenario_from_dict(named.config, "x") == named


def test_custom_design_defaults(tmp_path):
    path = write(tmp_path, "c.toml", '[scenario]\nname = "c"\ndesign = "custom"\n[design]\n')
    assert load_scenario(str(path)).design == Design("custom")


# ------------------------------------------------------------------ bad files
# (id, file body, substrings the message must contain besides the file name).
# Each names the key, the bad value and what is allowed.

S = '[scenario]\nname = "x"\n'
BAD = [
    ("timeout-negative", S + "[protocol]\ntimeout = -5",
     ["[protocol] timeout = -5", "must be a whole number of seconds >= 1"]),
    ("timeout-float", S + "[protocol]\ntimeout = 45.0",
     ["[protocol] timeout = 45.0", "whole number of seconds >= 1", "float"]),
    ("timeout-string", S + '[protocol]\ntimeout = "45"',
     ['[protocol] timeout = "45"', "whole number of seconds >= 1", "string"]),
    ("servers-bool", S + "[topology]\nservers = true",
     ["[topology] servers = true", "whole number from 1 to 8", "boolean"]),
    ("clients-too-many", S + "[topology]\nclients = 9",
     ["[topology] clients = 9", "from 1 to 8", "state space"]),
    ("servers-zero", S + "[topology]\nservers = 0", ["[topology] servers = 0", "from 1 to 8"]),
    ("interval-negative", S + "[protocol]\ninterval = -1", ["[protocol] interval = -1", ">= 0"]),
    ("rtt-empty", S + "[protocol]\nrtt = []", ["[protocol] rtt = []", "non-empty list"]),
    ("rtt-repeat", S + "[protocol]\nrtt = [2, 2]", ["[protocol] rtt = [2, 2]", "distinct"]),
    ("rtt-negative", S + "[protocol]\nrtt = [0, -1]", ["[protocol] rtt = [0, -1]", ">= 0"]),
    ("rtt-scalar", S + "[protocol]\nrtt = 2", ["[protocol] rtt = 2", "list of distinct whole numbers", "integer"]),
    ("retry-zero", S + "[protocol]\nretry = 0", ["[protocol] retry = 0", ">= 1"]),
    ("skew-length", S + "[protocol]\nskew = [0, 1]",
     ["[protocol] skew = [0, 1]", "[topology] servers = 3", "one offset per server"]),
    ("mult-one", S + "[protocol]\npublish_multiplier = 1", ["[protocol] publish_multiplier = 1", "number > 1"]),
    ("mult-string", S + '[protocol]\ngc_multiplier = "2"', ['[protocol] gc_multiplier = "2"', "number > 1"]),
    ("mult-inf", S + "[protocol]\ngc_multiplier = inf", ["[protocol] gc_multiplier = inf", "number > 1", "finite"]),
    ("levels-order", S + "[load]\nlevels_ms = [40000, 0]",
     ["[load] levels_ms = [40000, 0]", "strictly increasing"]),
    ("levels-base", S + "[load]\nlevels_ms = [6000, 40000]",
     ["[load] levels_ms = [6000, 40000]", "[load] threshold_ms = 5000", "<= threshold_ms"]),
    ("levels-same-advice", S + "[load]\nlevels_ms = [0, 3000]",
     ["[load] levels_ms = [0, 3000]", "threshold_ms = 5000", "same as 0 ms"]),
    ("load-server-index", S + "[load]\nservers = [3]",
     ["[load] servers = [3]", "[topology] servers = 3", "from 0 to 2"]),
    ("trigger", S + '[load]\ntrigger = "always"', ['[load] trigger = "always"', '"free", "reconnects"']),
    ("unknown-key", S + '[load]\ntrigr = "free"',
     ["[load] trigr", "unknown key", "allowed keys in [load]: levels_ms, servers, trigger, threshold_ms"]),
    ("unknown-section", S + "[lod]\nservers = [1]", ["[lod]", "unknown section", "allowed sections: scenario"]),
    ("top-level-key", S.replace("[scenario]", "servers = 3\n[scenario]"),
     ["servers = 3", "goes in [topology] or [load]"]),
    ("section-not-table", 'topology = 3\n' + S, ["topology = 3", "must be a table [topology]"]),
    ("loss-one-server", S + "[topology]\nservers = 1\n[faults]\nserver_loss = 1",
     ["[faults] server_loss = 1", "[topology] servers = 1", "only server"]),
    ("loss-server-index", S + "[faults]\nloss_servers = [0, 7]",
     ["[faults] loss_servers = [0, 7]", "[topology] servers = 3", "from 0 to 2"]),
    ("cut-duration", S + "[faults]\ncut_duration = 0", ["[faults] cut_duration = 0", ">= 1"]),
    ("crash-float", S + "[faults]\nclient_crash = 0.5", ["[faults] client_crash = 0.5", "whole number >= 0"]),
    ("design-unknown", S + 'design = "global"',
     ['[scenario] design = "global"', '"off", "per-server"', '"custom"']),
    ("custom-no-table", S + 'design = "custom"', ['[scenario] design = "custom"', "needs a [design] table"]),
    ("table-not-custom", S + 'design = "off"\n[design]\ntuner = "fleet"',
     ["[design]", 'design is "off"', 'only allowed with [scenario] design = "custom"']),
    ("custom-delay", S + 'design = "custom"\n[design]\ntuner = "per-server"\npropagation_delay = 5',
     ["[design] propagation_delay = 5", '[design] tuner = "per-server"', 'only to tuner = "fleet"']),
    ("custom-tuner", S + 'design = "custom"\n[design]\ntuner = "global"',
     ['[design] tuner = "global"', '"static", "per-server", "fleet", "fleet-staged"']),
    ("custom-record", S + 'design = "custom"\n[design]\nrecord = "handshake"',
     ['[design] record = "handshake"', '[design] judge = "server"', 'only with judge = "session"']),
    ("custom-name", S + 'design = "custom"\n[design]\nname = "off"',
     ['[design] name = "off"', "shipped design"]),
    ("max-seconds", S + "[search]\nmax_seconds = 0", ["[search] max_seconds = 0", "number > 0"]),
    ("max-depth", S + "[search]\nmax_depth = -1", ["[search] max_depth = -1", ">= 0"]),
    ("no-scenario", "[topology]\nservers = 2", ["[scenario]", "missing", "name ="]),
    ("no-name", '[scenario]\ndescription = "d"', ["[scenario] name", "missing", "non-empty string"]),
    ("name-number", "[scenario]\nname = 5", ["[scenario] name = 5", "letters, digits", "integer"]),
    ("name-path", "[scenario]\nname = \"../x\"", ["[scenario] name = \"../x\"", "letters, digits"]),
]


@pytest.mark.parametrize("case, body, expected", BAD, ids=[case for case, _, _ in BAD])
def test_bad_file(tmp_path, case, body, expected):
    path = write(tmp_path, f"{case}.toml", body + "\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    msg = str(info.value)
    assert f"{case}.toml" in msg
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_scenario_error_is_a_value_error():
    assert issubclass(ScenarioError, ValueError)


def test_unknown_key_suggests(tmp_path):
    with pytest.raises(ScenarioError, match="Did you mean trigger"):
        load_scenario(str(write(tmp_path, "x.toml", S + '[load]\ntrigr = "free"\n')))


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "broken.toml", '[scenario]\nname = "x"\ntimeout 45\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    msg = str(info.value)
    assert "broken.toml" in msg and "not valid TOML" in msg and "line 3" in msg


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b'[scenario]\nname = "caf\xe9"\n')
    with pytest.raises(ScenarioError, match="latin.toml: not UTF-8"):
        load_scenario(str(path))


def test_unknown_preset_lists_presets():
    with pytest.raises(ScenarioError) as info:
        load_scenario("gitter-2016")
    msg = str(info.value)
    assert "gitter-2016" in msg and "not a preset" in msg
    assert all(name in msg for name in PRESETS)


def test_missing_file_lists_presets(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(missing))
    msg = str(info.value)
    assert str(missing) in msg and "does not exist" in msg
    assert all(name in msg for name in PRESETS)


def test_directory_is_not_a_scenario(tmp_path):
    (tmp_path / "sub.toml").mkdir()
    with pytest.raises(ScenarioError, match="sub.toml: is not a file"):
        load_scenario(str(tmp_path / "sub.toml"))


def test_dict_errors_name_the_source():
    with pytest.raises(ScenarioError, match=r"^trace-42: \[topology\] servers = 0: "):
        scenario_from_dict({"scenario": {"name": "x"}, "topology": {"servers": 0}}, "trace-42")
    with pytest.raises(ScenarioError, match="trace-42: must be a table"):
        scenario_from_dict(["not", "a", "dict"], "trace-42")


@pytest.mark.parametrize("module", [scenario_module, scenario_files])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
