"""`sagestep ab simulate` studies the test an input starts only if it fills the input's gaps as the state machine does:
the defaults in sagestep.abtest.inputs are those of the ABTestStateMachine's "Prepare test" state."""

from __future__ import annotations

import json
import re

from sagestep.abtest import inputs
from tests.conftest import REPO_ROOT

PREPARE = json.loads((REPO_ROOT / "statemachines" / "ab_test.asl.json").read_text())["States"]["Prepare test"]["Output"]


def _value(text: str) -> object:
    return text.strip("'") if text.startswith("'") else json.loads(text)


def test_the_simulation_uses_the_state_machines_defaults():
    # GIVEN the defaults the JSONata of "Prepare test" applies ($exists($in.X) ? $in.X : default) and its design ones
    defaults = {key: _value(value) for key, value in
                re.findall(r"\$exists\(\$in\.(\w+)\) \? \$in\.\1 : ('[^']*'|[\d.]+)", PREPARE)}
    design = dict(re.findall(r"'(Metric|Alpha|Power)': ('[^']*'|[\d.]+)", PREPARE))
    defaults.update({key: _value(value) for key, value in design.items()})
    overrun = re.findall(r"\$looks \* (\d+)", PREPARE)
    # THEN sagestep.abtest.inputs holds the same values
    assert defaults == inputs.MACHINE_DEFAULTS
    assert overrun and set(overrun) == {str(inputs.LOOKS_OVERRUN)}
