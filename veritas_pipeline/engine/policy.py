"""The precedence policy: which objects discovery owns and what the sync may still write on them.

Operators change it without code (Dagster run config or environment); the defaults are the RFC's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .registry import ModelSpec

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
