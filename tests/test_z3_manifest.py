"""The symbolic engine against counterexamples/manifest.json: every preset, every named design.

``no_valid_reap`` for every entry; every property the engine checks for the
1-client 2015 fleet, for every stack preset, its variants and the proxy
presets, and for every shipped rollout (a ``sometimes`` property where the
manifest has a witness). A verdict must agree with the manifest's, and say
how it was reached: a violation is a certified (replayed) run; a design that
holds is *proved* (inductive invariant: any number of clients, unbounded
time), not bounded. The exceptions are what the encoding does not cover
(time in milliseconds, `z3_coverage.check_encodable`): inconclusive, saying
"not encoded", never a guess.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stormcheck.checkers import run_engine
from stormcheck.checkers.z3_bmc import CHECKED
from stormcheck.checkers.z3_coverage import check_encodable
from stormcheck.model.scenario import load_scenario
from stormcheck.properties.core import NotEncoded, Verdict
from stormcheck.properties.protocol import by_name
from stormcheck.traces.run import replay

MANIFEST = json.loads((Path(__file__).parent.parent / "counterexamples" / "manifest.json").read_text())


EVERY_PROPERTY = ("stacks/", "variants/", "proxies/", "rollouts/")


def _entries():
    for check in MANIFEST["checks"]:
        every = check["scenario"] == "gitter-2015" or check["scenario"].startswith(EVERY_PROPERTY)
        names = [n for n, v in check["verdicts"].items()
                 if n in CHECKED and (by_name(n).modality == "always" or v == "holds")] if every \
            else ["no_valid_reap"]
        yield pytest.param(check, names, id=f"{check['scenario']}/{check['design']}")


@pytest.mark.slow
@pytest.mark.parametrize("check,names", list(_entries()))
def test_symbolic_verdicts_agree_with_the_manifest(check, names):
    sc = load_scenario(check["scenario"], design=check["design"])
    try:
        check_encodable(sc.params)
        encoded = True
    except NotEncoded:
        encoded = False
    result = run_engine("symbolic", sc, tuple(by_name(n) for n in names), seed=0)
    for name in names:
        got = result.get(name)
        if not encoded:
            assert got.verdict is Verdict.INCONCLUSIVE and "not encoded" in got.basis
            continue
        assert str(got.verdict) == check["verdicts"][name], (name, got.basis)
        if got.verdict is Verdict.VIOLATED or got.run is not None:
            assert got.basis.startswith("certified")
            replay(sc.params, got.run.initial, got.run.actions, got.run.states)
        elif got.modality == "always":
            assert got.basis.startswith("proved by an inductive invariant"), got.basis


def test_the_2015_presets_are_encoded_under_every_design():
    for check in MANIFEST["checks"]:
        if check["scenario"] in ("gitter-2015", "gitter-2015-3x3", "static-45"):
            check_encodable(load_scenario(check["scenario"], design=check["design"]).params)


def test_every_stack_preset_and_rollout_is_encoded():
    from stormcheck.model.scenario import shipped_names

    units = set()
    for folder in ("stacks", "variants", "proxies", "rollouts"):
        for name in shipped_names(folder):
            params = load_scenario(name).params
            check_encodable(params)
            units.add(params.unit)
    assert units == {"s", "ms"}  # a preset in milliseconds is among them


@pytest.mark.slow
def test_an_unproved_rollout_without_a_counterexample_in_the_bound_is_inconclusive_not_holds():
    """rollouts/actioncable-beat-10 breaks parameter_agreement in 8 steps at the shortest; below that bound
    the invariant does not close either, so the verdict says so, with the counterexample to induction."""
    sc = load_scenario("rollouts/actioncable-beat-10")
    got = run_engine("symbolic", sc, (by_name("parameter_agreement"),), seed=0, steps=6).get("parameter_agreement")
    assert got.verdict is Verdict.INCONCLUSIVE
    assert "not proved" in got.basis and "counterexample to induction" in got.basis and "<= 6 steps" in got.basis
