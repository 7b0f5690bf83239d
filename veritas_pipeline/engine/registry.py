"""The declarative registry: one entry per Nautobot model the sync knows.

An entry says how a model is identified across the two instances (its natural key), which fields are
synced and how each one compares and resolves (plain values, references, many-to-many, generic
references, content types merged as a union), whether it is a tree, and which fields are safe to write
on an object that discovery owns. Adapters, diffsync models, the plan, the write order and the Dagster
asset graph are all derived from these entries: adding a model is adding an entry.

Models of the sync groups are "synced"; the others ("lookup" models: devices, interfaces, clusters,
cable types) are discovered data the sync only ever resolves references into, by natural key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .values import normalize

# The order of DESIGN.md section 3: each group may only reference the groups before it.
GROUPS: tuple[str, ...] = (
    "foundation",
    "organization",
    "secrets",
    "locations",
    "physical_infrastructure",
    "hardware_catalog",
    "cloud",
    "network_services",
    "wireless",
    "metadata",
    "cabling",
)

# Fields safe to write on any discovery-touched object of any model that has them: documentation and
# business context, never placement or identity (RFC "Conflict Resolution Strategy": metadata and
# documentation updates allowed; tenant and contact relationships allowed).
COMMON_SAFE_FIELDS: tuple[str, ...] = ("description", "comments", "custom_fields", "tags", "tenant")


@dataclass(frozen=True, eq=False)  # one instance per model: compared and hashed by identity
class ModelSpec:
    label: str  # "dcim.location"
    endpoint: str  # "dcim/locations"
    group: str | None  # None for lookup-only models
    key: tuple[str, ...]  # natural key; may name references, resolved recursively
    fields: tuple[str, ...] = ()  # plain values compared and written as they are
    refs: Mapping[str, str] = field(default_factory=dict)  # FK field -> model label
    m2m: Mapping[str, str] = field(default_factory=dict)  # many-to-many field -> model label
    generic: Mapping[str, str] = field(default_factory=dict)  # generic id field -> its content-type field
    union: tuple[str, ...] = ()  # content-type lists: written as the union with what VeritasBot already has
    unordered: tuple[str, ...] = ()  # plain list fields whose order carries no meaning
    decimals: tuple[str, ...] = ()  # decimal fields, compared by value ("1.50" equals "1.5")
    tree: str | None = None  # self-referencing parent field: written parents first, level by level
    # Reference to the node's type, a tree itself: a node's type must sit under its parent's type.
    tree_type: str | None = None
    tags: bool = False  # carries extras.Tag through TaggedItem (so also the sync tag)
    custom_fields: bool = False
    required: tuple[str, ...] = ()  # references without which the object cannot be written
    # Fields that can only be set once later models of the group exist: left out of the create, then
    # written by an update at the end of the group (a select custom field's default needs its choices).
    deferred: tuple[str, ...] = ()
    safe: tuple[str, ...] = ()  # fields besides COMMON_SAFE_FIELDS safe on a discovery-touched object
    discovery_holder: bool = False  # discovery-touched when it holds discovered devices or VMs

    def normalize(self, name: str, value: Any) -> Any:
        return normalize(value, unordered=name in self.unordered, decimal=name in self.decimals)

    @property
    def synced(self) -> bool:
        return self.group is not None

    @property
    def name(self) -> str:
        """A Python identifier for the model (diffsync model names, metadata keys)."""
        return self.label.replace(".", "_")

    @property
    def compared_fields(self) -> tuple[str, ...]:
        # Plain key fields are compared too: a rename in production is an update of the same object.
        names = [*self.key, *self.fields, *self.refs, *self.m2m, *self.generic, *self.union]
        for generic_id, type_field in self.generic.items():
            names.append(type_field)
        if self.tags:
            names.append("tags")
        if self.custom_fields:
            names.append("custom_fields")
        return tuple(dict.fromkeys(names))

    @property
    def safe_fields(self) -> frozenset[str]:
        # Union fields only ever add content types, so they never take anything from discovery.
        return frozenset((*COMMON_SAFE_FIELDS, *self.safe, *self.union))


def _model(label: str, endpoint: str, group: str | None, key: str | tuple[str, ...], fields: str = "",
           **options) -> ModelSpec:
    if isinstance(key, str):
        key = tuple(key.split())
    for mapping in ("refs", "m2m", "generic"):
        options[mapping] = MappingProxyType(dict(options.get(mapping, {})))
    for names in ("union", "unordered", "decimals", "required", "safe", "deferred"):
        if isinstance(options.get(names), str):
            options[names] = tuple(options[names].split())
    return ModelSpec(label=label, endpoint=endpoint, group=group, key=key, fields=tuple(fields.split()), **options)


# Writable REST fields the sync deliberately leaves alone, with the reason (a live test holds the registry
# to "every writable field is synced or listed here").
NOT_SYNCED_FIELDS: Mapping[str, str] = MappingProxyType({
    "relationships": "Relationship associations are out of scope (RFC Appendix A)",
    "teams": "the reverse of Team.contacts, which is synced on Team",
    "user": "RackReservation.user cannot cross instances: Nautobot sets the sync account",
    "front_image": "image files are not part of the REST payload",
    "rear_image": "image files are not part of the REST payload",
    "owner_content_type": "Git-repository ownership belongs to each instance's own repositories",
    "owner_object_id": "Git-repository ownership belongs to each instance's own repositories",
})

STATUS, ROLE, TAG = "extras.status", "extras.role", "extras.tag"
TENANT, LOCATION, MANUFACTURER = "tenancy.tenant", "dcim.location", "dcim.manufacturer"
SECRETS_GROUP = "extras.secretsgroup"
METADATA = dict(tags=True, custom_fields=True)

_SYNCED = [
    # 1 foundation: everything else may carry statuses, roles, tags and custom fields. Custom fields come
    # first: statuses, roles and tags carry custom field values themselves.
    _model("extras.customfield", "extras/custom-fields", "foundation", "key",
           "label type grouping description required default weight validation_minimum validation_maximum "
           "validation_regex advanced_ui filter_logic scope_filter", union="content_types",
           safe="label grouping weight advanced_ui", deferred="default"),
    _model("extras.customfieldchoice", "extras/custom-field-choices", "foundation", "custom_field value",
           "weight", refs={"custom_field": "extras.customfield"}, required="custom_field", safe="weight"),
    _model(STATUS, "extras/statuses", "foundation", "name", "color description", union="content_types",
           custom_fields=True),
    _model(ROLE, "extras/roles", "foundation", "name", "color description weight", union="content_types",
           custom_fields=True),
    _model(TAG, "extras/tags", "foundation", "name", "color description", union="content_types",
           custom_fields=True),
    _model("tenancy.tenantgroup", "tenancy/tenant-groups", "foundation", "name", "description",
           refs={"parent": "tenancy.tenantgroup"}, tree="parent", custom_fields=True),
    # 2 organization
    _model("extras.contact", "extras/contacts", "organization", "name phone email", "address comments", **METADATA,
           safe="address"),
    _model("extras.team", "extras/teams", "organization", "name phone email", "address comments",
           m2m={"contacts": "extras.contact"}, **METADATA, safe="address contacts"),
    _model(TENANT, "tenancy/tenants", "organization", "name", "description comments",
           refs={"tenant_group": "tenancy.tenantgroup"}, **METADATA, safe="tenant_group"),
    # 3 secrets: references only, never a secret's value
    _model("extras.secret", "extras/secrets", "secrets", "name", "description provider parameters", **METADATA),
    _model(SECRETS_GROUP, "extras/secrets-groups", "secrets", "name", "description", custom_fields=True),
    _model("extras.secretsgroupassociation", "extras/secrets-groups-associations", "secrets",
           "secrets_group access_type secret_type", "", refs={"secrets_group": SECRETS_GROUP,
                                                               "secret": "extras.secret"},
           required="secrets_group secret"),
    _model("extras.externalintegration", "extras/external-integrations", "secrets", "name",
           "remote_url verify_ssl timeout extra_config http_method headers ca_file_path",
           refs={"secrets_group": SECRETS_GROUP}, **METADATA),
    # 4 locations
    _model("dcim.locationtype", "dcim/location-types", "locations", "name", "description nestable",
           refs={"parent": "dcim.locationtype"}, tree="parent", union="content_types", custom_fields=True),
    _model(LOCATION, "dcim/locations", "locations", "parent name",
           "description comments time_zone facility asn physical_address shipping_address latitude longitude "
           "contact_name contact_phone contact_email",
           refs={"parent": LOCATION, "location_type": "dcim.locationtype", "status": STATUS, "tenant": TENANT},
           tree="parent", tree_type="location_type", **METADATA, required="location_type status",
           discovery_holder=True,
           decimals="latitude longitude",
           safe="facility time_zone physical_address shipping_address latitude longitude contact_name "
                "contact_phone contact_email"),
    _model("dcim.rackgroup", "dcim/rack-groups", "locations", "location name", "description",
           refs={"parent": "dcim.rackgroup", "location": LOCATION}, tree="parent", custom_fields=True,
           required="location"),
    # 5 physical infrastructure
    _model("dcim.rack", "dcim/racks", "physical_infrastructure", "location rack_group name",
           "type width outer_unit facility_id serial asset_tag u_height desc_units outer_width outer_depth comments",
           refs={"status": STATUS, "role": ROLE, "location": LOCATION, "rack_group": "dcim.rackgroup",
                 "tenant": TENANT}, **METADATA, required="status location", discovery_holder=True,
           safe="facility_id serial asset_tag"),
    # RackReservation.user cannot cross instances: it is never sent, so Nautobot sets the sync account.
    _model("dcim.rackreservation", "dcim/rack-reservations", "physical_infrastructure", "rack units",
           "description units", refs={"rack": "dcim.rack", "tenant": TENANT}, unordered="units", **METADATA,
           required="rack"),
    _model("dcim.powerpanel", "dcim/power-panels", "physical_infrastructure", "location name",
           "panel_type power_path breaker_position_count",
           refs={"location": LOCATION, "rack_group": "dcim.rackgroup"}, **METADATA, required="location"),
    _model("dcim.powerfeed", "dcim/power-feeds", "physical_infrastructure", "power_panel name",
           "type power_path supply phase breaker_pole_count voltage amperage max_utilization breaker_position comments",
           refs={"power_panel": "dcim.powerpanel", "destination_panel": "dcim.powerpanel", "rack": "dcim.rack",
                 "status": STATUS}, **METADATA, required="power_panel status"),
    # 6 hardware catalog
    _model(MANUFACTURER, "dcim/manufacturers", "hardware_catalog", "name", "description", custom_fields=True),
    _model("dcim.devicefamily", "dcim/device-families", "hardware_catalog", "name", "description", **METADATA),
    _model("dcim.platform", "dcim/platforms", "hardware_catalog", "name",
           "network_driver napalm_driver napalm_args description", refs={"manufacturer": MANUFACTURER},
           custom_fields=True),
    _model("dcim.devicetype", "dcim/device-types", "hardware_catalog", "manufacturer model",
           "part_number u_height is_full_depth subdevice_role comments",
           refs={"manufacturer": MANUFACTURER, "device_family": "dcim.devicefamily"}, **METADATA,
           required="manufacturer", safe="part_number"),
    _model("dcim.modulefamily", "dcim/module-families", "hardware_catalog", "name", "description",
           custom_fields=True),
    _model("dcim.moduletype", "dcim/module-types", "hardware_catalog", "manufacturer model", "part_number comments",
           refs={"manufacturer": MANUFACTURER, "module_family": "dcim.modulefamily"}, **METADATA,
           required="manufacturer", safe="part_number"),
    _model("dcim.softwareversion", "dcim/software-versions", "hardware_catalog", "platform version",
           "alias release_date end_of_support_date documentation_url long_term_support pre_release",
           refs={"platform": "dcim.platform", "status": STATUS}, **METADATA, required="platform status",
           safe="alias release_date end_of_support_date documentation_url"),
    _model("dcim.softwareimagefile", "dcim/software-image-files", "hardware_catalog",
           "software_version image_file_name",
           "image_file_checksum hashing_algorithm image_file_size download_url default_image",
           refs={"software_version": "dcim.softwareversion", "status": STATUS,
                 "external_integration": "extras.externalintegration"}, **METADATA,
           required="software_version status", safe="image_file_checksum hashing_algorithm download_url"),
    # DeviceType.software_image_files is read-only on DeviceType: it is written through its own table.
    _model("dcim.devicetypetosoftwareimagefile", "dcim/device-types-to-software-image-files", "hardware_catalog",
           "device_type software_image_file", "",
           refs={"device_type": "dcim.devicetype", "software_image_file": "dcim.softwareimagefile"},
           required="device_type software_image_file"),
    # 7 cloud
    _model("cloud.cloudresourcetype", "cloud/cloud-resource-types", "cloud", "name", "description config_schema",
           refs={"provider": MANUFACTURER}, union="content_types", **METADATA, required="provider"),
    _model("cloud.cloudaccount", "cloud/cloud-accounts", "cloud", "name", "description account_number",
           refs={"provider": MANUFACTURER, "secrets_group": SECRETS_GROUP}, **METADATA, required="provider"),
    _model("cloud.cloudnetwork", "cloud/cloud-networks", "cloud", "name", "description extra_config",
           refs={"cloud_resource_type": "cloud.cloudresourcetype", "cloud_account": "cloud.cloudaccount",
                 "parent": "cloud.cloudnetwork"}, tree="parent", **METADATA,
           required="cloud_resource_type cloud_account"),
    _model("cloud.cloudservice", "cloud/cloud-services", "cloud", "name", "description extra_config",
           refs={"cloud_resource_type": "cloud.cloudresourcetype", "cloud_account": "cloud.cloudaccount"},
           **METADATA, required="cloud_resource_type"),
    _model("cloud.cloudservicenetworkassignment", "cloud/cloud-service-network-assignments", "cloud",
           "cloud_service cloud_network", "",
           refs={"cloud_service": "cloud.cloudservice", "cloud_network": "cloud.cloudnetwork"},
           required="cloud_service cloud_network"),
    # 8 network services
    _model("circuits.provider", "circuits/providers", "network_services", "name",
           "asn account portal_url noc_contact admin_contact comments", **METADATA,
           safe="account portal_url noc_contact admin_contact"),
    _model("circuits.providernetwork", "circuits/provider-networks", "network_services", "provider name",
           "description comments", refs={"provider": "circuits.provider"}, **METADATA, required="provider"),
    _model("circuits.circuittype", "circuits/circuit-types", "network_services", "name", "description",
           custom_fields=True),
    _model("circuits.circuit", "circuits/circuits", "network_services", "provider cid",
           "install_date commit_rate description comments",
           refs={"provider": "circuits.provider", "circuit_type": "circuits.circuittype", "status": STATUS,
                 "tenant": TENANT}, **METADATA, required="provider circuit_type status",
           safe="install_date commit_rate"),
    _model("circuits.circuittermination", "circuits/circuit-terminations", "network_services", "circuit term_side",
           "port_speed upstream_speed xconnect_id pp_info description",
           refs={"circuit": "circuits.circuit", "location": LOCATION, "provider_network": "circuits.providernetwork",
                 "cloud_network": "cloud.cloudnetwork"}, **METADATA, required="circuit",
           safe="xconnect_id pp_info"),
    # 9 wireless
    _model("wireless.supporteddatarate", "wireless/supported-data-rates", "wireless", "standard rate", "mcs_index",
           **METADATA),
    _model("wireless.radioprofile", "wireless/radio-profiles", "wireless", "name",
           "channel_width allowed_channel_list frequency tx_power_min tx_power_max regulatory_domain rx_power_min",
           m2m={"supported_data_rates": "wireless.supporteddatarate"}, unordered="channel_width allowed_channel_list",
           **METADATA),
    _model("wireless.wirelessnetwork", "wireless/wireless-networks", "wireless", "name",
           "description ssid mode enabled authentication hidden",
           refs={"secrets_group": SECRETS_GROUP, "tenant": TENANT}, **METADATA),
    # 10 metadata
    _model("extras.configcontextschema", "extras/config-context-schemas", "metadata", "name",
           "description data_schema", custom_fields=True),
    # ConfigContext.tags is an assignment (which tagged objects get the context), not tagging.
    _model("extras.configcontext", "extras/config-contexts", "metadata", "name", "weight description is_active data",
           refs={"config_context_schema": "extras.configcontextschema"},
           m2m={"locations": LOCATION, "roles": ROLE, "device_types": "dcim.devicetype", "platforms": "dcim.platform",
                "tenant_groups": "tenancy.tenantgroup", "tenants": TENANT, "tags": TAG,
                "device_families": "dcim.devicefamily", "device_redundancy_groups": "dcim.deviceredundancygroup",
                "cluster_groups": "virtualization.clustergroup", "clusters": "virtualization.cluster"}),
    _model("extras.exporttemplate", "extras/export-templates", "metadata", "content_type name",
           "content_type description template_code mime_type file_extension"),
    _model("extras.contactassociation", "extras/contact-associations", "metadata",
           "contact team associated_object_type associated_object_id role", "",
           refs={"contact": "extras.contact", "team": "extras.team", "role": ROLE, "status": STATUS},
           generic={"associated_object_id": "associated_object_type"}, custom_fields=True,
           required="role status associated_object_id", safe="status"),
    # 11 cabling: written only when both endpoints resolve in VeritasBot (they are often discovered).
    # Tags are deferred: Nautobot 3.2's CableSerializer.create skips the tagging mixin and drops them.
    _model("dcim.cable", "dcim/cables", "cabling",
           "termination_a_type termination_a_id termination_b_type termination_b_id",
           "type label color length length_unit", refs={"status": STATUS, "cable_type": "dcim.cabletype"},
           generic={"termination_a_id": "termination_a_type", "termination_b_id": "termination_b_type"},
           **METADATA, required="status termination_a_id termination_b_id", safe="label color length length_unit",
           decimals="length", deferred="tags"),
]

# Discovered (or built-in) data: never written, only resolved by natural key.
_LOOKUP = [
    _model("dcim.cabletype", "dcim/cable-types", None, "name"),
    _model("dcim.device", "dcim/devices", None, "location name", refs={"location": LOCATION}),
    *[_model(f"dcim.{component}", f"dcim/{endpoint}", None, "device name", refs={"device": "dcim.device"})
      for component, endpoint in (("interface", "interfaces"), ("frontport", "front-ports"),
                                  ("rearport", "rear-ports"), ("consoleport", "console-ports"),
                                  ("consoleserverport", "console-server-ports"), ("powerport", "power-ports"),
                                  ("poweroutlet", "power-outlets"))],
    _model("dcim.deviceredundancygroup", "dcim/device-redundancy-groups", None, "name"),
    _model("virtualization.clustergroup", "virtualization/cluster-groups", None, "name"),
    _model("virtualization.cluster", "virtualization/clusters", None, "name"),
]

MODELS: Mapping[str, ModelSpec] = MappingProxyType({spec.label: spec for spec in (*_SYNCED, *_LOOKUP)})
SYNCED_MODELS: tuple[ModelSpec, ...] = tuple(_SYNCED)


def models_of_group(group: str) -> tuple[ModelSpec, ...]:
    return tuple(spec for spec in SYNCED_MODELS if spec.group == group)


def group_dependencies(group: str) -> tuple[str, ...]:
    """The earlier groups whose models this group's models reference (the Dagster asset edges)."""
    referenced = set()
    for spec in models_of_group(group):
        if spec.generic:
            # A generic reference (a contact's object, a cable's endpoints) may point into any earlier group.
            referenced.update(GROUPS[:GROUPS.index(group)])
        for target in (*spec.refs.values(), *spec.m2m.values()):
            referenced.add(MODELS[target].group)
        if spec.tags or spec.custom_fields:
            referenced.add("foundation")
    referenced.discard(None)
    referenced.discard(group)
    return tuple(g for g in GROUPS if g in referenced)


def validate_registry() -> None:
    """Fail fast on an entry that names an unknown model or references a later group."""
    order = {group: index for index, group in enumerate(GROUPS)}
    for spec in SYNCED_MODELS:
        if spec.group not in order:
            raise ValueError(f"{spec.label}: unknown group {spec.group!r}")
        for name, target in (*spec.refs.items(), *spec.m2m.items()):
            if target not in MODELS:
                raise ValueError(f"{spec.label}.{name}: unknown model {target!r}")
            target_group = MODELS[target].group
            if target_group is not None and order[target_group] > order[spec.group]:
                raise ValueError(f"{spec.label}.{name} references {target}, which syncs in a later group")
        for name in (*spec.key, *spec.required, *spec.safe, *spec.deferred):
            if name not in spec.compared_fields and name not in spec.key:
                raise ValueError(f"{spec.label}: {name!r} is not one of its fields")
        if spec.tree and spec.refs.get(spec.tree) != spec.label:
            raise ValueError(f"{spec.label}: tree field {spec.tree!r} must reference the model itself")
        if spec.tree_type and not (spec.tree and spec.tree_type in spec.refs
                                   and MODELS[spec.refs[spec.tree_type]].tree):
            raise ValueError(f"{spec.label}: tree type {spec.tree_type!r} must reference a tree model from a tree")


validate_registry()
