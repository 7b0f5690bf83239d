"""The precedence policy file: what an operator writes, and the errors a mistake gets."""

from __future__ import annotations

import pytest

from veritas_pipeline.engine.policy import PrecedencePolicy, load_policy_file
from veritas_pipeline.engine.registry import MODELS


def test_a_policy_file_overrides_settings(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("prune_orphans: true\nprune_limit: 7\ndiscovery_tags: [Found by LLDP]\n"
                    "safe_fields:\n  dcim.rack: [comments, serial]\n")
    settings = load_policy_file(str(path))
    policy = PrecedencePolicy(discovery_tags=tuple(settings["discovery_tags"]), prune_orphans=settings["prune_orphans"],
                              prune_limit=settings["prune_limit"],
                              safe_field_overrides={k: tuple(v) for k, v in settings["safe_fields"].items()})
    assert policy.safe_fields(MODELS["dcim.rack"]) == {"comments", "serial"}
    assert "description" in policy.safe_fields(MODELS["dcim.location"])  # other models keep their defaults
    assert (policy.prune_orphans, policy.prune_limit, policy.discovery_tags) == (True, 7, ("Found by LLDP",))


@pytest.mark.parametrize("text, error", [
    ("prune_orphnas: true\n", "unknown setting 'prune_orphnas'"),
    ("prune_limit: many\n", "prune_limit must be a int"),
    ("safe_fields:\n  dcim.device: [comments]\n", "'dcim.device', which is not a synced model"),
    ("safe_fields:\n  dcim.rack: [colour]\n", "unknown fields ['colour']"),
    ("- a list\n", "expected a mapping"),
])
def test_a_mistake_in_the_policy_file_names_the_setting(tmp_path, text, error):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error.replace("[", r"\[").replace("]", r"\]")) as raised:
        load_policy_file(str(path))
    assert str(path) in str(raised.value)


def test_a_missing_policy_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read it"):
        load_policy_file(str(tmp_path / "absent.yaml"))
