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
