"""The precedence policy: which objects discovery owns and what the sync may still write on them.

Operators change it without code (Dagster run config or environment); the defaults are the RFC's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .registry import MODELS, ModelSpec

DEFAULT_DISCOVERY_TAGS: tuple[str, ...] = (
    "SSoT Synced from OpenShift",
    "SSoT Synced from vSphere",
    "SSoT Synced from Network Discovery",
)
DEFAULT_SYNC_TAG = "SSoT Synced from Production"


@dataclass(frozen=True)
class PrecedencePolicy:
    discovery_tags: tuple[str, ...] = DEFAULT_DISCOVERY_TAGS
    sync_tag: str = DEFAULT_SYNC_TAG
    # Per model label: the complete list of safe fields, replacing the registry's defaults.
    safe_field_overrides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    prune_orphans: bool = False
    prune_limit: int = 50

    def safe_fields(self, spec: ModelSpec) -> frozenset[str]:
        if spec.label in self.safe_field_overrides:
            return frozenset(self.safe_field_overrides[spec.label])
        return spec.safe_fields


POLICY_KEYS = {"discovery_tags": list, "sync_tag": str, "safe_fields": dict, "prune_orphans": bool, "prune_limit": int}


def load_policy_file(path: str) -> dict[str, Any]:
    """The settings of a policy file (YAML, which includes JSON), checked: a mistake names the key."""
    try:
        settings = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"policy file {path}: cannot read it: {error}") from None
    if not isinstance(settings, dict):
        raise ValueError(f"policy file {path}: expected a mapping of settings, got {type(settings).__name__}")
    for key, value in settings.items():
        if key not in POLICY_KEYS:
            raise ValueError(f"policy file {path}: unknown setting {key!r}; known: {', '.join(POLICY_KEYS)}")
        if not isinstance(value, POLICY_KEYS[key]):
            raise ValueError(f"policy file {path}: {key} must be a {POLICY_KEYS[key].__name__}, got {value!r}")
    for label, names in settings.get("safe_fields", {}).items():
        spec = MODELS.get(label)
        if spec is None or not spec.synced:
            raise ValueError(f"policy file {path}: safe_fields names {label!r}, which is not a synced model")
        unknown = set(names) - set(spec.compared_fields)
        if unknown:
            raise ValueError(f"policy file {path}: safe_fields of {label} name unknown fields {sorted(unknown)}")
    return settings
