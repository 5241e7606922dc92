"""The manifest of expected results is data, and this test enforces it.

Every preset scenario under every named design has an entry; each entry's
verdicts and pinned state count must be what the engine computes now.
"""

import json
from pathlib import Path

import pytest

from stormcheck.checkers import run_engine
from stormcheck.model.params import DESIGNS
from stormcheck.model.scenario import load_scenario, preset_names
from stormcheck.properties.protocol import PROPERTIES, by_name

MANIFEST = Path(__file__).resolve().parent.parent / "counterexamples" / "manifest.json"
CHECKS = json.loads(MANIFEST.read_text())["checks"]


def test_every_preset_and_design_has_an_expected_verdict():
    listed = {(c["scenario"], c["design"]) for c in CHECKS}
    wanted = {(p, d) for p in preset_names() for d in DESIGNS}
    assert wanted <= listed, f"missing from the manifest: {sorted(wanted - listed)}"
    assert len(listed) == len(CHECKS), "an entry is listed twice"


def test_the_2015_design_is_expected_to_fail_and_the_fixes_to_hold():
    # The expectations themselves, as reviewed: this guards the manifest
    # against being regenerated blindly from whatever the engine says.
    by = {(c["scenario"], c["design"]): c["verdicts"]["no_valid_reap"] for c in CHECKS}
    for design in ("per-server", "fleet-wide", "per-session-branch"):
        assert by["gitter-2015", design] == "violated"
    for design in ("off", "fleet-wide-staged", "per-session"):
        assert by["gitter-2015", design] == "holds"


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: f"{c['scenario']}/{c['design']}")
def test_engine_agrees_with_manifest(check):
    scenario = load_scenario(check["scenario"], design=check["design"])
    # Every entry lists PROPERTIES; an entry may list more (no_message_loss).
    assert [p.name for p in PROPERTIES] == list(check["verdicts"])[: len(PROPERTIES)]
    result = run_engine(check["engine"], scenario, tuple(by_name(n) for n in check["verdicts"]))
    assert {p.name: str(p.verdict) for p in result.properties} == check["verdicts"]
    assert result.stats["states"] == check["states"]
    assert result.stats["complete"] == check["complete"]
    assert result.stats["depth_bound"] == check["depth_bound"]
    for prop in result.properties:
        # A violation comes with its trace; a complete search with none.
        wants_run = (prop.modality == "always") == (prop.verdict.value == "violated")
        if prop.verdict.value != "inconclusive":
            assert (prop.run is not None) == wants_run
