"""The precedence policy: which objects discovery owns and what the sync may still write on them.

One strict model serves both ways an operator sets it: the Dagster resource's settings and a policy file
(YAML or JSON) whose keys override them. A wrong type, a negative cap, an empty tag name, an unknown
setting, model or field is refused before anything is read or written, with an error that names the
setting and the value. The defaults are the RFC's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from .registry import MODELS, ModelSpec

DEFAULT_DISCOVERY_TAGS: tuple[str, ...] = (
    "SSoT Synced from OpenShift",
    "SSoT Synced from vSphere",
    "SSoT Synced from Network Discovery",
)
DEFAULT_SYNC_TAG = "SSoT Synced from Production"
# The catalogue and place models discovery jobs create (network discovery finds manufacturers, platforms,
# device types, software, racks and their places; the CMDB import finds tenants): an object of these
# models that VeritasBot already had is discovery's, and production only writes its safe fields. Rows of
# the other models that both instances create at install (statuses, roles, ...) follow production.
DEFAULT_DISCOVERY_OWNED_MODELS: tuple[str, ...] = (
    "dcim.manufacturer",
    "dcim.devicefamily",
    "dcim.platform",
    "dcim.devicetype",
    "dcim.modulefamily",
    "dcim.moduletype",
    "dcim.softwareversion",
    "dcim.softwareimagefile",
    "dcim.locationtype",
    "dcim.location",
    "dcim.rackgroup",
    "dcim.rack",
    "tenancy.tenantgroup",
    "tenancy.tenant",
)
DEFAULT_PRUNE_MAX_FRACTION = 0.1

# A tag or field name: a real string with something in it ("", "  ", 1 and null are refused).
Name = Annotated[StrictStr, Field(min_length=1, pattern=r"\S")]


class PolicyError(ValueError):
    """A policy setting is wrong; the message names every wrong setting and its value."""


class PrecedencePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    discovery_tags: tuple[Name, ...] = Field(default=DEFAULT_DISCOVERY_TAGS,
                                             description="Tags that mark objects discovery owns")
    sync_tag: Name = Field(default=DEFAULT_SYNC_TAG, description="Tag carried by every object the sync writes")
    # Per model label: the complete list of safe fields, replacing the registry's defaults.
    safe_field_overrides: Mapping[StrictStr, tuple[Name, ...]] = Field(
        default_factory=dict, alias="safe_fields",
        description="Per model label: the fields the sync may write on a discovery-touched object")
    prune_orphans: StrictBool = Field(default=False, description="Delete sync-tagged objects gone from production")
    prune_limit: StrictInt = Field(default=50, ge=0, description="Most orphans deleted in one run")
    prune_max_fraction: Annotated[float, Field(strict=True, ge=0, le=1)] = Field(
        default=DEFAULT_PRUNE_MAX_FRACTION,
        description="Largest share of a model's synced objects deleted in one run; above it none of that model is")
    discovery_owned_models: tuple[Name, ...] = Field(
        default=DEFAULT_DISCOVERY_OWNED_MODELS,
        description="Models whose objects VeritasBot had before the sync (adopted) are discovery-owned")

    @field_validator("discovery_owned_models")
    @classmethod
    def _synced_models(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [label for label in labels if label not in MODELS or not MODELS[label].synced]
        if unknown:
            verb = "is not a synced model" if len(unknown) == 1 else "are not synced models"
            raise ValueError(f"{', '.join(map(repr, unknown))} {verb}")
        return labels

    @field_validator("safe_field_overrides")
    @classmethod
    def _known_models_and_fields(cls, overrides: Mapping[str, tuple[str, ...]]) -> Mapping[str, tuple[str, ...]]:
        for label, names in overrides.items():
            spec = MODELS.get(label)
            if spec is None or not spec.synced:
                raise ValueError(f"{label!r} is not a synced model")
            unknown = sorted(set(names) - set(spec.compared_fields))
            if unknown:
                raise ValueError(f"{label} has no fields {unknown}")
        return overrides

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], source: str = "policy") -> PrecedencePolicy:
        """A policy from setting names and values (the resource's, a file's); errors name `source`."""
        try:
            return cls.model_validate(dict(settings))
        except ValidationError as error:
            raise PolicyError(f"{source}: " + "; ".join(_describe(problem) for problem in error.errors())) from None

    def discovery_owned(self, spec: ModelSpec) -> bool:
        """Whether an adopted object of this model is discovery's (see DEFAULT_DISCOVERY_OWNED_MODELS)."""
        return spec.label in self.discovery_owned_models

    def safe_fields(self, spec: ModelSpec) -> frozenset[str]:
        if spec.label in self.safe_field_overrides:
            return frozenset(self.safe_field_overrides[spec.label])
        return spec.safe_fields


SETTINGS: tuple[str, ...] = tuple(field.alias or name for name, field in PrecedencePolicy.model_fields.items())


def _describe(problem: dict) -> str:
    setting = ".".join(str(part) for part in problem["loc"]) or "policy"
    if problem["type"] == "extra_forbidden":
        return f"unknown setting {setting!r} (known: {', '.join(SETTINGS)})"
    message = problem["msg"].removeprefix("Value error, ")
    return f"{setting}: {message}, got {problem['input']!r}"


def load_policy_file(path: str) -> dict[str, Any]:
    """The settings of a policy file (YAML, which includes JSON), checked: a mistake names the setting."""
    try:
        settings = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise PolicyError(f"policy file {path}: cannot read it: {error}") from None
    if not isinstance(settings, dict):
        raise PolicyError(f"policy file {path}: expected a mapping of settings, got {type(settings).__name__}")
    PrecedencePolicy.from_settings(settings, f"policy file {path}")
    return settings
