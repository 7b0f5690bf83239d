"""The precedence policy: what an operator writes, and the errors a mistake gets (from a file or the resource)."""

from __future__ import annotations

import re

import pytest

from veritas_pipeline.engine.policy import PolicyError, PrecedencePolicy, load_policy_file
from veritas_pipeline.engine.registry import MODELS
from veritas_pipeline.resources import NautobotResource, SyncResource


def test_a_policy_file_overrides_settings(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("prune_orphans: true\nprune_limit: 7\ndiscovery_tags: [Found by LLDP]\n"
                    "safe_fields:\n  dcim.rack: [comments, serial]\n")
    policy = PrecedencePolicy.from_settings(load_policy_file(str(path)))
    assert policy.safe_fields(MODELS["dcim.rack"]) == {"comments", "serial"}
    assert "description" in policy.safe_fields(MODELS["dcim.location"])  # other models keep their defaults
    assert (policy.prune_orphans, policy.prune_limit, policy.discovery_tags) == (True, 7, ("Found by LLDP",))


@pytest.mark.parametrize("text, error", [
    ("prune_orphnas: true\n", "unknown setting 'prune_orphnas'"),
    ("prune_limit: many\n", "prune_limit: Input should be a valid integer, got 'many'"),
    ("prune_limit: -5\n", "prune_limit: Input should be greater than or equal to 0, got -5"),
    ("prune_limit: true\n", "prune_limit: Input should be a valid integer, got True"),
    ("prune_limit: 2.5\n", "prune_limit: Input should be a valid integer, got 2.5"),
    ("prune_orphans: 'yes'\n", "prune_orphans: Input should be a valid boolean, got 'yes'"),
    ("discovery_tags: [1, null]\n", "discovery_tags.0: Input should be a valid string, got 1"),
    ("discovery_tags: [1, null]\n", "discovery_tags.1: Input should be a valid string, got None"),
    ("discovery_tags: Found by LLDP\n", "discovery_tags: Input should be a valid tuple, got 'Found by LLDP'"),
    ("sync_tag: ''\n", "sync_tag: String should have at least 1 character, got ''"),
    ("sync_tag: '   '\n", "sync_tag: String should match pattern"),
    ("safe_fields:\n  dcim.location: null\n", "safe_fields.dcim.location: Input should be a valid tuple, got None"),
    ("safe_fields:\n  dcim.device: [comments]\n", "safe_fields: 'dcim.device' is not a synced model"),
    ("safe_fields:\n  dcim.rack: [colour]\n", "safe_fields: dcim.rack has no fields ['colour']"),
    ("safe_fields: [dcim.rack]\n", "safe_fields: Input should be a valid dictionary"),
    ("prune_max_fraction: 1.5\n", "prune_max_fraction: Input should be less than or equal to 1, got 1.5"),
    ("prune_max_fraction: -0.1\n", "prune_max_fraction: Input should be greater than or equal to 0, got -0.1"),
    ("prune_max_fraction: true\n", "prune_max_fraction: Input should be a valid number, got True"),
    ("prune_max_fraction: '0.2'\n", "prune_max_fraction: Input should be a valid number, got '0.2'"),
    ("discovery_owned_models: [dcim.device]\n", "discovery_owned_models: 'dcim.device' is not a synced model"),
    ("discovery_owned_models: [dcim.rack, null]\n", "discovery_owned_models.1: Input should be a valid string, got None"),
    ("- a list\n", "expected a mapping"),
])
def test_a_mistake_in_the_policy_file_names_the_setting_and_value(tmp_path, text, error):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=re.escape(error)) as raised:
        load_policy_file(str(path))
    assert str(path) in str(raised.value)


def test_every_mistake_of_a_file_is_named_at_once(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("prune_limit: -1\nsync_tag: ''\n")
    with pytest.raises(PolicyError) as raised:
        load_policy_file(str(path))
    assert "prune_limit" in str(raised.value) and "sync_tag" in str(raised.value)


def test_a_missing_policy_file_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read it"):
        load_policy_file(str(tmp_path / "absent.yaml"))


def _resource(**settings) -> SyncResource:
    instance = NautobotResource(url="http://127.0.0.1:9", token="unused")
    return SyncResource(production=instance, veritas=instance, **settings)


@pytest.mark.parametrize("settings, error", [
    ({"prune_limit": -5}, "prune_limit: Input should be greater than or equal to 0, got -5"),
    # The resource field's own type would make this 1: the policy model sees the value as given.
    ({"prune_limit": True}, "prune_limit: Input should be a valid integer, got True"),
    ({"discovery_tags": [1, None]}, "discovery_tags.0: Input should be a valid string, got 1; "
                                    "discovery_tags.1: Input should be a valid string, got None"),
    ({"sync_tag": ""}, "sync_tag: String should have at least 1 character, got ''"),
    ({"safe_fields": {"dcim.location": None}}, "safe_fields.dcim.location: Input should be a valid tuple, got None"),
    ({"safe_fields": {"dcim.rack": ["colour"]}}, "safe_fields: dcim.rack has no fields ['colour']"),
    ({"prune_max_fraction": 2}, "prune_max_fraction: Input should be less than or equal to 1, got 2"),
    ({"discovery_owned_models": ["extras.status", "dcim.device"]},
     "discovery_owned_models: 'dcim.device' is not a synced model"),
])
def test_the_resource_settings_go_through_the_same_model(settings, error):
    with pytest.raises(ValueError, match=re.escape("sync resource settings: " + error)) as raised:
        _resource(**settings).policy()
    assert "unused" not in str(raised.value), "a settings error echoed the instances' tokens"


def test_the_resource_settings_reach_the_policy():
    policy = _resource(prune_limit=3, prune_max_fraction=0.5, discovery_owned_models=["dcim.rack"]).policy()
    assert (policy.prune_limit, policy.prune_max_fraction, policy.discovery_owned_models) == (3, 0.5, ("dcim.rack",))
    assert policy.discovery_owned(MODELS["dcim.rack"]) and not policy.discovery_owned(MODELS["dcim.location"])


def test_the_default_discovery_owned_models_are_the_catalogue_and_places_not_built_in_rows():
    owned = {label for label in MODELS if PrecedencePolicy().discovery_owned(MODELS[label])}
    assert {"dcim.manufacturer", "dcim.platform", "dcim.devicetype", "dcim.locationtype", "dcim.location",
            "dcim.rackgroup", "dcim.rack", "tenancy.tenant"} <= owned
    assert not owned & {"extras.status", "extras.role", "extras.tag", "extras.customfield"}


def test_a_policy_file_overrides_the_resource(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text('{"prune_limit": 4, "sync_tag": "From the source of truth"}')
    policy = _resource(prune_limit=9, prune_orphans=True, policy_file=str(path)).policy()
    assert (policy.prune_limit, policy.sync_tag, policy.prune_orphans) == (4, "From the source of truth", True)
