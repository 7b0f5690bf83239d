"""The registry's declarations and the iterations the engine derives from them. No Nautobot involved."""

from __future__ import annotations

from pathlib import Path

import pytest

from veritas_pipeline.engine.registry import (
    GROUPS,
    MODELS,
    SYNCED_MODELS,
    Field,
    Kind,
    discovery_placements,
    fields,
    group_dependencies,
    holder_models,
    ref,
)


def test_a_field_is_declared_once():
    assert [(f.name, f.kind, f.target) for f in fields("name", parent=ref("dcim.location")).values()] == [
        ("name", Kind.VALUE, None), ("parent", Kind.REFERENCE, "dcim.location")]
    with pytest.raises(ValueError, match="'name' is declared twice"):
        fields("name", name=ref("dcim.location"))


@pytest.mark.parametrize("spec", SYNCED_MODELS, ids=lambda spec: spec.label)
def test_iterations_cover_every_declared_field(spec):
    comparable = [f.name for f in spec.comparable()]
    assert comparable[:len(spec.key)] == list(spec.key) and sorted(comparable) == sorted(spec.fields)
    for reference in spec.references():
        assert reference.is_reference
        if reference.kind is Kind.GENERIC:
            assert spec.field(reference.type_field).kind is Kind.CONTENT_TYPE
        else:
            assert reference.target in MODELS
    assert {f.name for f in spec.deferred_fields()} == set(spec.deferred)


def test_every_reference_target_syncs_in_the_same_or_an_earlier_group():
    for group in GROUPS:
        for dependency in group_dependencies(group):
            assert GROUPS.index(dependency) < GROUPS.index(group)


def test_discovered_objects_sit_in_synced_holder_models():
    placements = list(discovery_placements())
    assert placements, "no model declares where discovered objects sit"
    for spec, path, holder in placements:
        assert not spec.synced and MODELS[holder].synced
        target = spec
        for hop in path:
            target = MODELS[target.field(hop).target]
        assert target.label == holder
    assert set(holder_models()) == {holder for _spec, _path, holder in placements}


def test_every_kind_has_its_handling_and_no_engine_module_but_the_registry_asks_for_kinds():
    assert {spec_field.kind for spec in MODELS.values() for spec_field in spec.comparable()} <= set(Kind)
    for kind in Kind:
        assert Field("x", kind).handling is not None, kind
    engine = Path(__file__).resolve().parents[1] / "veritas_pipeline" / "engine"
    asking = [path.name for path in engine.glob("*.py") if path.name != "registry.py" and "Kind." in path.read_text()]
    assert asking == []
