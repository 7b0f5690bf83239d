"""The local stack (issue: local Nautobot stack): servers, tokens, seeds, discovery state, explicit ids."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from veritas_pipeline.engine.registry import SYNCED_MODELS

from .conftest import SEED, Api, StackInfo
from .stack_helpers import REPO, read_stack_env, stack_command

DISCOVERY_TAGS = ("SSoT Synced from OpenShift", "SSoT Synced from vSphere", "SSoT Synced from Network Discovery")


def test_both_servers_answer_with_the_expected_version(stack: StackInfo):
    for api in (stack.production, stack.veritas):
        assert api.get("status")["nautobot-version"] == "3.2.7"


def test_pipeline_tokens_read_and_only_the_veritas_one_writes(stack: StackInfo):
    env = stack.env
    production = Api(env["PRODUCTION_NAUTOBOT_URL"], env["PRODUCTION_NAUTOBOT_TOKEN"])
    veritas = Api(env["VERITASBOT_URL"], env["VERITASBOT_TOKEN"])
    assert production.count("dcim/locations") > 0
    assert veritas.count("extras/statuses") > 0

    refused = production.write("POST", "tenancy/tenants", {"name": f"never-{uuid.uuid4().hex[:8]}"})
    assert refused.status_code == 403, refused.text

    name = f"token-check-{uuid.uuid4().hex[:8]}"
    created = veritas.write("POST", "tenancy/tenants", {"name": name})
    assert created.status_code == 201, created.text
    assert veritas.write("DELETE", f"tenancy/tenants/{created.json()['id']}", None).status_code == 204

    assert Api(env["VERITASBOT_URL"], "0" * 40).session.get(veritas.url + "/dcim/locations/").status_code == 403


def test_post_with_an_explicit_id_creates_exactly_that_uuid(stack: StackInfo):
    wanted = str(uuid.uuid4())
    response = stack.veritas.write("POST", "tenancy/tenants", {"id": wanted, "name": f"explicit-{wanted[:8]}"})
    assert response.status_code == 201, response.text
    assert response.json()["id"] == wanted
    assert stack.veritas.get(f"tenancy/tenants/{wanted}")["id"] == wanted
    stack.veritas.write("DELETE", f"tenancy/tenants/{wanted}", None)


def test_veritas_holds_the_simulated_discovery_state(fresh_stack: StackInfo):
    production, veritas = fresh_stack.production, fresh_stack.veritas
    tags = {tag["name"] for tag in veritas.all("extras/tags")}
    assert set(DISCOVERY_TAGS) <= tags
    for tag in DISCOVERY_TAGS:
        tagged = veritas.count("dcim/devices", tags=tag) + veritas.count("virtualization/virtual-machines", tags=tag)
        assert tagged > 0, f"nothing in VeritasBot carries {tag!r}"
    discovered_devices = [device for tag in DISCOVERY_TAGS for device in veritas.all("dcim/devices", tags=tag)]
    assert any(device["rack"] for device in discovered_devices), "no discovered device sits in a rack"
    assert {device["location"]["id"] for device in discovered_devices}, "no discovered device has a location"

    # Objects that share a natural key with production under another UUID (a discovery job created them).
    for endpoint, key in (("dcim/manufacturers", "name"), ("dcim/location-types", "name"),
                          ("tenancy/tenants", "name"), ("dcim/platforms", "name"), ("dcim/locations", "name")):
        production_ids = {row[key]: row["id"] for row in production.all(endpoint)}
        shared = [row for row in veritas.all(endpoint) if row[key] in production_ids]
        assert shared, f"no {endpoint} object in VeritasBot shares a natural key with production"
        assert all(row["id"] != production_ids[row[key]] for row in shared), endpoint


def test_every_model_in_scope_is_seeded_for_two_seeds(stack: StackInfo):
    try:
        for seed in (SEED, f"{SEED}-second"):
            stack_command("up", "--seed", seed)
            production = StackInfo(read_stack_env()).production
            counts = {spec.label: production.count(spec.endpoint) for spec in SYNCED_MODELS}
            empty = sorted(label for label, count in counts.items() if count == 0)
            assert not empty, f"seed {seed!r} left these models empty in production: {empty}"
        # Asked for no seed, `up` keeps the one the databases hold instead of resetting to the default.
        marker = f"kept-{uuid.uuid4().hex[:8]}"
        assert production.write("POST", "tenancy/tenants", {"name": marker}).status_code == 201
        subprocess.run([sys.executable, str(REPO / "stack" / "stackctl.py"), "up"], check=True,
                       env={key: value for key, value in os.environ.items()
                            if key not in ("VERITAS_STACK_SEED", "VERITAS_STACK_SCALE",
                                           "VERITAS_STACK_DISCOVERY_SCALE")})
        assert production.count("tenancy/tenants", name=marker) == 1, "`up` without a seed reset the databases"
    finally:
        stack_command("up", "--seed", SEED)
