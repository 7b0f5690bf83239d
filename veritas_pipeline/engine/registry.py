"""The declarative registry: one entry per Nautobot model the sync knows, and the one owner of field kinds.

An entry says how a model is identified across the two instances (its natural key), declares every
synced field once with its kind (a plain value, a reference, a generic reference and its content type,
many-to-many, tags, content types merged as a union, custom fields) and whether it can hold credentials
(recorded only as a digest), whether it is a tree, and which fields are safe to write on an object that
discovery owns. Adapters, diffsync models, the plan, the
write order, the data-quality frames and the Dagster asset graph are all derived from these entries,
through the iterations below (`references`, `comparable`, `deferred_fields`, `models_referencing`, ...):
adding a model is adding an entry, and no other module asks which kind a field is by name.

Models of the sync groups are "synced"; the others ("lookup" models: devices, interfaces, clusters,
cable types) are discovered data the sync only ever resolves references into, by natural key. Lookup
models that discovery fills declare where their objects sit (`discovered_in`): the synced objects they
sit in are discovery-touched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from types import MappingProxyType
from typing import Any, Iterator, Mapping, Protocol

from .values import choice_value, content_type_label, normalize, ref_id

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

TAG_MODEL, CUSTOM_FIELD_MODEL = "extras.tag", "extras.customfield"


class Kind(str, Enum):
    VALUE = "value"  # compared and written as it is (a choice compares by its value)
    DECIMAL = "decimal"  # compared by value: "1.50" equals "1.5"
    UNORDERED = "unordered"  # a list whose order carries no meaning
    REFERENCE = "reference"  # foreign key to `target`
    GENERIC = "generic"  # id of an object whose model is named by the content-type field `type_field`
    CONTENT_TYPE = "content_type"  # the model a generic reference points into
    MANY = "many"  # many-to-many to `target`
    TAGS = "tags"  # extras.tag through TaggedItem (so also the sync tag)
    UNION = "union"  # content-type list: written as the union with what VeritasBot already has
    CUSTOM_FIELDS = "custom_fields"  # custom field values, compared and written key by key


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    target: str | None = None  # the referenced model (references, many-to-many, tags, custom fields)
    type_field: str | None = None  # generic references: the field naming the target's model
    # Can hold credentials (HTTP headers, API keys in a JSON blob): written as it is, but recorded in the
    # audit trail and in conflicts only as a digest.
    credentials: bool = False

    @property
    def is_reference(self) -> bool:
        """Holds ids of other objects, translated between the instances through the identity map."""
        return self.kind in (Kind.REFERENCE, Kind.GENERIC, Kind.MANY, Kind.TAGS)

    @property
    def many(self) -> bool:
        return self.kind in (Kind.MANY, Kind.TAGS)

    def target_of(self, row: dict) -> str | None:
        """The model this reference points into on `row` (a generic reference reads it from the row)."""
        if self.kind is Kind.GENERIC:
            return content_type_label(row.get(self.type_field))
        return self.target

    def target_ids(self, row: dict) -> list[str]:
        """The ids this reference holds on `row`: one at most, or any number for many-to-many and tags."""
        values = (row.get(self.name) or ()) if self.many else (row.get(self.name),)
        return [target_id for target_id in map(ref_id, values) if target_id is not None]

    def canonical(self, value: Any) -> Any:
        """A hashable form in which equal values from either instance compare equal."""
        return normalize(value, unordered=self.kind is Kind.UNORDERED, decimal=self.kind is Kind.DECIMAL)

    @property
    def handling(self) -> Handling:
        """How the sync translates, reads back, writes and shows this field: decided once, by its kind."""
        return _HANDLING[self.kind]


# ---------------------------------------------------------------- what each kind of field means to the sync

class Terms(Protocol):
    """What a field's handling needs from the run: the identity map and the tags the sync manages."""

    managed_tag_ids: frozenset[str]  # the sync tag and the discovery tags: never compared, never dropped
    discovery_tag_ids: frozenset[str]

    def resolve(self, label: str | None, production_id: str | None) -> tuple[str | None, str | None]:
        """(VeritasBot id, None), or (None, why the reference cannot be written)."""

    def tags_to_write(self, tag_ids: list[str]) -> list[dict]:
        """A tags value as written: these tags and the sync tag."""

    def described(self, label: str | None, object_id: str) -> str:
        """An object as an operator reads it: its display name and id."""


@dataclass(frozen=True)
class Translated:
    """A production value in VeritasBot's terms. `problem`: it cannot be written (an unresolved reference);
    `pending`: members of a many-valued reference left out, each with its reason."""
    value: Any
    problem: str | None = None
    pending: tuple[str, ...] = ()


class Handling:
    """A plain value: compared by its canonical form, written as production has it."""

    def empty(self) -> Any:
        """The value of a field an object leaves out."""
        return None

    def translate(self, spec_field: Field, row: dict, terms: Terms) -> Translated:
        return Translated(choice_value(row.get(spec_field.name)))

    def current(self, spec_field: Field, row: dict, desired: Any, terms: Terms) -> Any:
        """VeritasBot's value in the shape of `desired`, restricted to what the sync manages."""
        return choice_value(row.get(spec_field.name))

    def created(self, spec_field: Field, value: Any, terms: Terms) -> Any:
        """The value as a create sends it."""
        return value

    def written(self, spec_field: Field, want: Any, row: dict, terms: Terms) -> Any:
        """The value as an update sends it, over VeritasBot's `row`."""
        return want

    def parts(self, value: Any) -> dict[str | None, Any]:
        """The value as the diff compares it: whole (key None), or key by key."""
        return {None: value}

    def shown(self, spec_field: Field, value: Any, row: dict, terms: Terms) -> Any:
        """The value as a conflict shows it (`row`: the side's whole object)."""
        return value


class _Reference(Handling):
    def translate(self, spec_field: Field, row: dict, terms: Terms) -> Translated:
        resolved, problem = terms.resolve(spec_field.target_of(row), ref_id(row.get(spec_field.name)))
        return Translated(resolved, problem)

    def current(self, spec_field: Field, row: dict, desired: Any, terms: Terms) -> Any:
        return ref_id(row.get(spec_field.name))

    def shown(self, spec_field: Field, value: Any, row: dict, terms: Terms) -> Any:
        return value if value is None else terms.described(spec_field.target_of(row), value)


class _Many(Handling):
    """Ids of other objects, in any order; one that does not resolve is left out and reported."""

    def translate(self, spec_field: Field, row: dict, terms: Terms) -> Translated:
        ids, pending = set(), []
        for target_id in spec_field.target_ids(row):
            resolved, problem = terms.resolve(spec_field.target, target_id)
            if problem:
                pending.append(problem)
            else:
                ids.add(resolved)
        return Translated(sorted(ids - self._kept(terms)), pending=tuple(pending))

    def current(self, spec_field: Field, row: dict, desired: Any, terms: Terms) -> Any:
        return sorted(set(spec_field.target_ids(row)) - self._kept(terms))

    def shown(self, spec_field: Field, value: Any, row: dict, terms: Terms) -> Any:
        return value if value is None else [terms.described(spec_field.target, object_id) for object_id in value]

    def _kept(self, terms: Terms) -> frozenset[str]:
        """Members the sync neither compares nor removes."""
        return frozenset()


class _Tags(_Many):
    """Tags compare without the sync and discovery tags; writing keeps discovery's and adds the sync tag."""

    def _kept(self, terms: Terms) -> frozenset[str]:
        return terms.managed_tag_ids

    def created(self, spec_field: Field, value: Any, terms: Terms) -> Any:
        return terms.tags_to_write(value)

    def written(self, spec_field: Field, want: Any, row: dict, terms: Terms) -> Any:
        kept = set(spec_field.target_ids(row)) & terms.discovery_tag_ids
        return terms.tags_to_write(sorted(set(want) | kept))


class _Union(Handling):
    """Content types: production's are added to what VeritasBot allows, never taken away."""

    def translate(self, spec_field: Field, row: dict, terms: Terms) -> Translated:
        return Translated(sorted(set(row.get(spec_field.name) or ())))

    def current(self, spec_field: Field, row: dict, desired: Any, terms: Terms) -> Any:
        return sorted(set(row.get(spec_field.name) or ()) & set(desired))

    def written(self, spec_field: Field, want: Any, row: dict, terms: Terms) -> Any:
        return sorted(set(want) | set(row.get(spec_field.name) or ()))


class _CustomFields(Handling):
    """Compared and written key by key, on production's keys only."""

    def empty(self) -> Any:
        return {}

    def translate(self, spec_field: Field, row: dict, terms: Terms) -> Translated:
        return Translated(dict(row.get(spec_field.name) or {}))

    def current(self, spec_field: Field, row: dict, desired: Any, terms: Terms) -> Any:
        values = row.get(spec_field.name) or {}
        return {key: values.get(key) for key in desired}

    def parts(self, value: Any) -> dict[str | None, Any]:
        return dict(value)


_HANDLING: Mapping[Kind, Handling] = MappingProxyType({
    Kind.VALUE: Handling(), Kind.DECIMAL: Handling(), Kind.UNORDERED: Handling(), Kind.CONTENT_TYPE: Handling(),
    Kind.REFERENCE: _Reference(), Kind.GENERIC: _Reference(), Kind.MANY: _Many(), Kind.TAGS: _Tags(),
    Kind.UNION: _Union(), Kind.CUSTOM_FIELDS: _CustomFields(),
})


# Declaring fields: `fields("name description", parent=ref(LOCATION), length=DECIMAL, **METADATA)`.
def ref(target: str) -> Field:
    return Field("", Kind.REFERENCE, target)


def many(target: str) -> Field:
    return Field("", Kind.MANY, target)


def generic(type_field: str) -> Field:
    return Field("", Kind.GENERIC, type_field=type_field)


DECIMAL, UNORDERED, UNION, CONTENT_TYPE = (Field("", kind) for kind in (
    Kind.DECIMAL, Kind.UNORDERED, Kind.UNION, Kind.CONTENT_TYPE))
TAGS = Field("", Kind.TAGS, TAG_MODEL)
CREDENTIALS = Field("", Kind.VALUE, credentials=True)
CUSTOM_FIELDS = Field("", Kind.CUSTOM_FIELDS, CUSTOM_FIELD_MODEL)
METADATA = dict(tags=TAGS, custom_fields=CUSTOM_FIELDS)


def fields(values: str = "", **declared: Field) -> Mapping[str, Field]:
    """Field declarations: the plain values named in `values`, then each keyword with its kind."""
    named = {name: Field(name, Kind.VALUE) for name in values.split()}
    for name, declaration in declared.items():
        if name in named:
            raise ValueError(f"field {name!r} is declared twice")
        named[name] = replace(declaration, name=name)
    return MappingProxyType(named)


@dataclass(frozen=True, eq=False)  # one instance per model: compared and hashed by identity
class ModelSpec:
    label: str  # "dcim.location"
    endpoint: str  # "dcim/locations"
    group: str | None  # None for lookup-only models
    key: tuple[str, ...]  # natural key; may name references, resolved recursively
    fields: Mapping[str, Field]  # every synced field (key fields included), once, with its kind
    tree: str | None = None  # self-referencing parent field: written parents first, level by level
    # Reference to the node's type, a tree itself: a node's type must sit under its parent's type.
    tree_type: str | None = None
    required: tuple[str, ...] = ()  # references without which the object cannot be written
    # Fields that can only be set once later models of the group exist: left out of the create, then
    # written by an update at the end of the group (a select custom field's default needs its choices).
    deferred: tuple[str, ...] = ()
    safe: tuple[str, ...] = ()  # fields besides COMMON_SAFE_FIELDS safe on a discovery-touched object
    # Lookup models discovery fills: reference paths ("cluster.location") from one of their objects to
    # the synced object it sits in, which is then discovery-touched.
    discovered_in: tuple[str, ...] = ()

    @property
    def synced(self) -> bool:
        return self.group is not None

    @property
    def name(self) -> str:
        """A Python identifier for the model (diffsync model names, metadata keys)."""
        return self.label.replace(".", "_")

    def field(self, name: str) -> Field:
        return self.fields[name]

    def comparable(self) -> tuple[Field, ...]:
        """Every field the sync compares and writes, natural-key fields first: a rename in production is
        an update of the same object."""
        return tuple(self.fields[name] for name in dict.fromkeys((*self.key, *self.fields)))

    @property
    def compared_fields(self) -> tuple[str, ...]:
        return tuple(spec_field.name for spec_field in self.comparable())

    def references(self) -> Iterator[Field]:
        """The fields holding ids of other objects, with their target and kind."""
        return (spec_field for spec_field in self.comparable() if spec_field.is_reference)

    def deferred_fields(self) -> tuple[Field, ...]:
        return tuple(self.fields[name] for name in self.deferred)

    def of_kind(self, kind: Kind) -> tuple[Field, ...]:
        return tuple(spec_field for spec_field in self.comparable() if spec_field.kind is kind)

    @property
    def tags(self) -> bool:
        """Carries extras.tag through TaggedItem, so it also carries the sync tag."""
        return bool(self.of_kind(Kind.TAGS))

    @property
    def tags_field(self) -> Field | None:
        """The field carrying the sync tag: every update restates it, so the tag stays."""
        return next(iter(self.of_kind(Kind.TAGS)), None)

    def tag_ids(self, row: dict) -> set[str]:
        """The ids of the tags `row` carries (none for a model without tags)."""
        tags = self.tags_field
        return set(tags.target_ids(row)) if tags else set()

    @property
    def custom_fields(self) -> bool:
        return bool(self.of_kind(Kind.CUSTOM_FIELDS))

    @property
    def safe_fields(self) -> frozenset[str]:
        # Union fields only ever add content types, so they never take anything from discovery.
        return frozenset((*COMMON_SAFE_FIELDS, *self.safe, *(union.name for union in self.of_kind(Kind.UNION))))

    @property
    def graphql_name(self) -> str:
        """Nautobot's GraphQL name of the model's list, and of the reverse relation to it from the models
        it references (a location's `devices`, a cluster's `virtual_machines`): its endpoint's last part."""
        return self.endpoint.rsplit("/", 1)[-1].replace("-", "_")

    @property
    def key_filterable(self) -> bool:
        """Whether VeritasBot objects can be found by natural key through list filters: every key part is a
        plain value, a reference or a content type, each filtered by its field's name."""
        return all(self.field(name).kind in _FILTERABLE_KINDS for name in self.key)

    def key_parts(self, key: tuple) -> Iterator[tuple[str, Any, str | None]]:
        """(field name, part, model the part's reference points into, or None) for each part of one of this
        model's natural keys: a generic reference's model is the key's content-type part."""
        for name, part in zip(self.key, key):
            key_field = self.field(name)
            if key_field.kind is Kind.GENERIC:
                yield name, part, key[self.key.index(key_field.type_field)] if key_field.type_field in self.key else None
            else:
                yield name, part, key_field.target if key_field.is_reference else None

    def kept(self, row: dict) -> dict:
        """The part of a REST row the sync uses: its declared fields and what names and places it. The rest
        (urls, computed fields, undeclared fields) is dropped on read, which bounds the memory a run needs."""
        return {name: value for name, value in row.items() if name in self.fields or name in _ROW_BASICS}

    def may_reference(self, label: str) -> bool:
        """Whether an object of this model can point at an object of `label` (a generic reference can
        point at any model)."""
        return any(reference.kind is Kind.GENERIC or reference.target == label for reference in self.references())


_FILTERABLE_KINDS = frozenset({Kind.VALUE, Kind.REFERENCE, Kind.GENERIC, Kind.CONTENT_TYPE})
# Row fields every model keeps besides its declared ones: identity, display name, age, any discovery tag
# (read off models that do not sync tags too), and a tree type's nestability.
_ROW_BASICS = frozenset({"id", "display", "name", "created", "tags", "nestable"})


def _model(label: str, endpoint: str, *, group: str | None, key: str, fields: Mapping[str, Field],
           **options) -> ModelSpec:
    for names in ("required", "safe", "deferred", "discovered_in"):
        if isinstance(options.get(names), str):
            options[names] = tuple(options[names].split())
    return ModelSpec(label=label, endpoint=endpoint, group=group, key=tuple(key.split()), fields=fields, **options)


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

STATUS, ROLE, TAG = "extras.status", "extras.role", TAG_MODEL
TENANT, LOCATION, MANUFACTURER = "tenancy.tenant", "dcim.location", "dcim.manufacturer"
SECRETS_GROUP = "extras.secretsgroup"

_SYNCED = [
    # 1 foundation: everything else may carry statuses, roles, tags and custom fields. Custom fields come
    # first: statuses, roles and tags carry custom field values themselves.
    _model(CUSTOM_FIELD_MODEL, "extras/custom-fields", group="foundation", key="key",
           fields=fields("key label type grouping description required default weight validation_minimum "
                         "validation_maximum validation_regex advanced_ui filter_logic scope_filter",
                         content_types=UNION),
           safe="label grouping weight advanced_ui", deferred="default"),
    _model("extras.customfieldchoice", "extras/custom-field-choices", group="foundation", key="custom_field value",
           fields=fields("value weight", custom_field=ref(CUSTOM_FIELD_MODEL)), required="custom_field",
           safe="weight"),
    _model(STATUS, "extras/statuses", group="foundation", key="name",
           fields=fields("name color description", content_types=UNION, custom_fields=CUSTOM_FIELDS)),
    _model(ROLE, "extras/roles", group="foundation", key="name",
           fields=fields("name color description weight", content_types=UNION, custom_fields=CUSTOM_FIELDS)),
    _model(TAG, "extras/tags", group="foundation", key="name",
           fields=fields("name color description", content_types=UNION, custom_fields=CUSTOM_FIELDS)),
    _model("tenancy.tenantgroup", "tenancy/tenant-groups", group="foundation", key="name",
           fields=fields("name description", parent=ref("tenancy.tenantgroup"), custom_fields=CUSTOM_FIELDS),
           tree="parent"),
    # 2 organization
    _model("extras.contact", "extras/contacts", group="organization", key="name phone email",
           fields=fields("name phone email address comments", **METADATA), safe="address"),
    _model("extras.team", "extras/teams", group="organization", key="name phone email",
           fields=fields("name phone email address comments", contacts=many("extras.contact"), **METADATA),
           safe="address contacts"),
    _model(TENANT, "tenancy/tenants", group="organization", key="name",
           fields=fields("name description comments", tenant_group=ref("tenancy.tenantgroup"), **METADATA),
           safe="tenant_group"),
    # 3 secrets: references only, never a secret's value
    _model("extras.secret", "extras/secrets", group="secrets", key="name",
           fields=fields("name description provider parameters", **METADATA)),
    _model(SECRETS_GROUP, "extras/secrets-groups", group="secrets", key="name",
           fields=fields("name description", custom_fields=CUSTOM_FIELDS)),
    _model("extras.secretsgroupassociation", "extras/secrets-groups-associations", group="secrets",
           key="secrets_group access_type secret_type",
           fields=fields("access_type secret_type", secrets_group=ref(SECRETS_GROUP), secret=ref("extras.secret")),
           required="secrets_group secret"),
    _model("extras.externalintegration", "extras/external-integrations", group="secrets", key="name",
           fields=fields("name remote_url verify_ssl timeout http_method ca_file_path", headers=CREDENTIALS,
                         extra_config=CREDENTIALS, secrets_group=ref(SECRETS_GROUP), **METADATA)),
    # 4 locations
    _model("dcim.locationtype", "dcim/location-types", group="locations", key="name",
           fields=fields("name description nestable", parent=ref("dcim.locationtype"), content_types=UNION,
                         custom_fields=CUSTOM_FIELDS),
           tree="parent"),
    _model(LOCATION, "dcim/locations", group="locations", key="parent name",
           fields=fields("name description comments time_zone facility asn physical_address shipping_address "
                         "contact_name contact_phone contact_email",
                         latitude=DECIMAL, longitude=DECIMAL, parent=ref(LOCATION),
                         location_type=ref("dcim.locationtype"), status=ref(STATUS), tenant=ref(TENANT), **METADATA),
           tree="parent", tree_type="location_type", required="location_type status",
           safe="facility time_zone physical_address shipping_address latitude longitude contact_name "
                "contact_phone contact_email"),
    _model("dcim.rackgroup", "dcim/rack-groups", group="locations", key="location name",
           fields=fields("name description", location=ref(LOCATION), parent=ref("dcim.rackgroup"),
                         custom_fields=CUSTOM_FIELDS),
           tree="parent", required="location"),
    # 5 physical infrastructure
    _model("dcim.rack", "dcim/racks", group="physical_infrastructure", key="location rack_group name",
           fields=fields("name type width outer_unit facility_id serial asset_tag u_height desc_units outer_width "
                         "outer_depth comments",
                         location=ref(LOCATION), rack_group=ref("dcim.rackgroup"), status=ref(STATUS), role=ref(ROLE),
                         tenant=ref(TENANT), **METADATA),
           required="status location", safe="facility_id serial asset_tag"),
    # RackReservation.user cannot cross instances: it is never sent, so Nautobot sets the sync account.
    _model("dcim.rackreservation", "dcim/rack-reservations", group="physical_infrastructure", key="rack units",
           fields=fields("description", rack=ref("dcim.rack"), units=UNORDERED, tenant=ref(TENANT), **METADATA),
           required="rack"),
    _model("dcim.powerpanel", "dcim/power-panels", group="physical_infrastructure", key="location name",
           fields=fields("name panel_type power_path breaker_position_count", location=ref(LOCATION),
                         rack_group=ref("dcim.rackgroup"), **METADATA),
           required="location"),
    _model("dcim.powerfeed", "dcim/power-feeds", group="physical_infrastructure", key="power_panel name",
           fields=fields("name type power_path supply phase breaker_pole_count voltage amperage max_utilization "
                         "breaker_position comments",
                         power_panel=ref("dcim.powerpanel"), destination_panel=ref("dcim.powerpanel"),
                         rack=ref("dcim.rack"), status=ref(STATUS), **METADATA),
           required="power_panel status"),
    # 6 hardware catalog
    _model(MANUFACTURER, "dcim/manufacturers", group="hardware_catalog", key="name",
           fields=fields("name description", custom_fields=CUSTOM_FIELDS)),
    _model("dcim.devicefamily", "dcim/device-families", group="hardware_catalog", key="name",
           fields=fields("name description", **METADATA)),
    _model("dcim.platform", "dcim/platforms", group="hardware_catalog", key="name",
           fields=fields("name network_driver napalm_driver napalm_args description", manufacturer=ref(MANUFACTURER),
                         custom_fields=CUSTOM_FIELDS)),
    _model("dcim.devicetype", "dcim/device-types", group="hardware_catalog", key="manufacturer model",
           fields=fields("model part_number u_height is_full_depth subdevice_role comments",
                         manufacturer=ref(MANUFACTURER), device_family=ref("dcim.devicefamily"), **METADATA),
           required="manufacturer", safe="part_number"),
    _model("dcim.modulefamily", "dcim/module-families", group="hardware_catalog", key="name",
           fields=fields("name description", custom_fields=CUSTOM_FIELDS)),
    _model("dcim.moduletype", "dcim/module-types", group="hardware_catalog", key="manufacturer model",
           fields=fields("model part_number comments", manufacturer=ref(MANUFACTURER),
                         module_family=ref("dcim.modulefamily"), **METADATA),
           required="manufacturer", safe="part_number"),
    _model("dcim.softwareversion", "dcim/software-versions", group="hardware_catalog", key="platform version",
           fields=fields("version alias release_date end_of_support_date documentation_url long_term_support "
                         "pre_release", platform=ref("dcim.platform"), status=ref(STATUS), **METADATA),
           required="platform status", safe="alias release_date end_of_support_date documentation_url"),
    _model("dcim.softwareimagefile", "dcim/software-image-files", group="hardware_catalog",
           key="software_version image_file_name",
           fields=fields("image_file_name image_file_checksum hashing_algorithm image_file_size download_url "
                         "default_image", software_version=ref("dcim.softwareversion"), status=ref(STATUS),
                         external_integration=ref("extras.externalintegration"), **METADATA),
           required="software_version status", safe="image_file_checksum hashing_algorithm download_url"),
    # DeviceType.software_image_files is read-only on DeviceType: it is written through its own table.
    _model("dcim.devicetypetosoftwareimagefile", "dcim/device-types-to-software-image-files", group="hardware_catalog",
           key="device_type software_image_file",
           fields=fields(device_type=ref("dcim.devicetype"), software_image_file=ref("dcim.softwareimagefile")),
           required="device_type software_image_file"),
    # 7 cloud
    _model("cloud.cloudresourcetype", "cloud/cloud-resource-types", group="cloud", key="name",
           fields=fields("name description config_schema", provider=ref(MANUFACTURER), content_types=UNION,
                         **METADATA),
           required="provider"),
    _model("cloud.cloudaccount", "cloud/cloud-accounts", group="cloud", key="name",
           fields=fields("name description account_number", provider=ref(MANUFACTURER),
                         secrets_group=ref(SECRETS_GROUP), **METADATA),
           required="provider"),
    _model("cloud.cloudnetwork", "cloud/cloud-networks", group="cloud", key="name",
           fields=fields("name description", extra_config=CREDENTIALS,
                         cloud_resource_type=ref("cloud.cloudresourcetype"), cloud_account=ref("cloud.cloudaccount"),
                         parent=ref("cloud.cloudnetwork"), **METADATA),
           tree="parent", required="cloud_resource_type cloud_account"),
    _model("cloud.cloudservice", "cloud/cloud-services", group="cloud", key="name",
           fields=fields("name description", extra_config=CREDENTIALS,
                         cloud_resource_type=ref("cloud.cloudresourcetype"), cloud_account=ref("cloud.cloudaccount"),
                         **METADATA),
           required="cloud_resource_type"),
    _model("cloud.cloudservicenetworkassignment", "cloud/cloud-service-network-assignments", group="cloud",
           key="cloud_service cloud_network",
           fields=fields(cloud_service=ref("cloud.cloudservice"), cloud_network=ref("cloud.cloudnetwork")),
           required="cloud_service cloud_network"),
    # 8 network services
    _model("circuits.provider", "circuits/providers", group="network_services", key="name",
           fields=fields("name asn account portal_url noc_contact admin_contact comments", **METADATA),
           safe="account portal_url noc_contact admin_contact"),
    _model("circuits.providernetwork", "circuits/provider-networks", group="network_services", key="provider name",
           fields=fields("name description comments", provider=ref("circuits.provider"), **METADATA),
           required="provider"),
    _model("circuits.circuittype", "circuits/circuit-types", group="network_services", key="name",
           fields=fields("name description", custom_fields=CUSTOM_FIELDS)),
    _model("circuits.circuit", "circuits/circuits", group="network_services", key="provider cid",
           fields=fields("cid install_date commit_rate description comments", provider=ref("circuits.provider"),
                         circuit_type=ref("circuits.circuittype"), status=ref(STATUS), tenant=ref(TENANT),
                         **METADATA),
           required="provider circuit_type status", safe="install_date commit_rate"),
    _model("circuits.circuittermination", "circuits/circuit-terminations", group="network_services",
           key="circuit term_side",
           fields=fields("term_side port_speed upstream_speed xconnect_id pp_info description",
                         circuit=ref("circuits.circuit"), location=ref(LOCATION),
                         provider_network=ref("circuits.providernetwork"), cloud_network=ref("cloud.cloudnetwork"),
                         **METADATA),
           required="circuit", safe="xconnect_id pp_info"),
    # 9 wireless
    _model("wireless.supporteddatarate", "wireless/supported-data-rates", group="wireless", key="standard rate",
           fields=fields("standard rate mcs_index", **METADATA)),
    _model("wireless.radioprofile", "wireless/radio-profiles", group="wireless", key="name",
           fields=fields("name frequency tx_power_min tx_power_max regulatory_domain rx_power_min",
                         channel_width=UNORDERED, allowed_channel_list=UNORDERED,
                         supported_data_rates=many("wireless.supporteddatarate"), **METADATA)),
    _model("wireless.wirelessnetwork", "wireless/wireless-networks", group="wireless", key="name",
           fields=fields("name description ssid mode enabled authentication hidden", secrets_group=ref(SECRETS_GROUP),
                         tenant=ref(TENANT), **METADATA)),
    # 10 metadata
    _model("extras.configcontextschema", "extras/config-context-schemas", group="metadata", key="name",
           fields=fields("name description data_schema", custom_fields=CUSTOM_FIELDS)),
    # ConfigContext.tags is an assignment (which tagged objects get the context), not tagging.
    _model("extras.configcontext", "extras/config-contexts", group="metadata", key="name",
           fields=fields("name weight description is_active data",
                         config_context_schema=ref("extras.configcontextschema"), locations=many(LOCATION),
                         roles=many(ROLE), device_types=many("dcim.devicetype"), platforms=many("dcim.platform"),
                         tenant_groups=many("tenancy.tenantgroup"), tenants=many(TENANT), tags=many(TAG),
                         device_families=many("dcim.devicefamily"),
                         device_redundancy_groups=many("dcim.deviceredundancygroup"),
                         cluster_groups=many("virtualization.clustergroup"), clusters=many("virtualization.cluster"))),
    _model("extras.exporttemplate", "extras/export-templates", group="metadata", key="content_type name",
           fields=fields("content_type name description template_code mime_type file_extension")),
    _model("extras.contactassociation", "extras/contact-associations", group="metadata",
           key="contact team associated_object_type associated_object_id role",
           fields=fields(contact=ref("extras.contact"), team=ref("extras.team"), associated_object_type=CONTENT_TYPE,
                         associated_object_id=generic("associated_object_type"), role=ref(ROLE), status=ref(STATUS),
                         custom_fields=CUSTOM_FIELDS),
           required="role status associated_object_id", safe="status"),
    # 11 cabling: written only when both endpoints resolve in VeritasBot (they are often discovered).
    # Tags are deferred: Nautobot 3.2's CableSerializer.create skips the tagging mixin and drops them.
    _model("dcim.cable", "dcim/cables", group="cabling",
           key="termination_a_type termination_a_id termination_b_type termination_b_id",
           fields=fields("type label color length_unit", termination_a_type=CONTENT_TYPE,
                         termination_a_id=generic("termination_a_type"), termination_b_type=CONTENT_TYPE,
                         termination_b_id=generic("termination_b_type"), length=DECIMAL, status=ref(STATUS),
                         cable_type=ref("dcim.cabletype"), **METADATA),
           required="status termination_a_id termination_b_id", safe="label color length length_unit",
           deferred="tags"),
]

# Discovered (or built-in) data: never written, only resolved by natural key.
_LOOKUP = [
    _model("dcim.cabletype", "dcim/cable-types", group=None, key="name", fields=fields("name")),
    _model("dcim.device", "dcim/devices", group=None, key="location name",
           fields=fields("name", location=ref(LOCATION), rack=ref("dcim.rack")), discovered_in="location rack"),
    *[_model(f"dcim.{component}", f"dcim/{endpoint}", group=None, key="device name",
             fields=fields("name", device=ref("dcim.device")))
      for component, endpoint in (("interface", "interfaces"), ("frontport", "front-ports"),
                                  ("rearport", "rear-ports"), ("consoleport", "console-ports"),
                                  ("consoleserverport", "console-server-ports"), ("powerport", "power-ports"),
                                  ("poweroutlet", "power-outlets"))],
    _model("dcim.deviceredundancygroup", "dcim/device-redundancy-groups", group=None, key="name",
           fields=fields("name")),
    _model("virtualization.clustergroup", "virtualization/cluster-groups", group=None, key="name",
           fields=fields("name")),
    _model("virtualization.cluster", "virtualization/clusters", group=None, key="name",
           fields=fields("name", location=ref(LOCATION))),
    _model("virtualization.virtualmachine", "virtualization/virtual-machines", group=None, key="cluster name",
           fields=fields("name", cluster=ref("virtualization.cluster")), discovered_in="cluster.location"),
]

MODELS: Mapping[str, ModelSpec] = MappingProxyType({spec.label: spec for spec in (*_SYNCED, *_LOOKUP)})
SYNCED_MODELS: tuple[ModelSpec, ...] = tuple(_SYNCED)


def models_of_group(group: str) -> tuple[ModelSpec, ...]:
    return tuple(spec for spec in SYNCED_MODELS if spec.group == group)


def models_referencing(label: str) -> tuple[str, ...]:
    """Synced models whose objects can point at an object of `label`: through a reference, many-to-many,
    tags, or a generic reference (which can point at any model)."""
    return tuple(spec.label for spec in SYNCED_MODELS if spec.may_reference(label))


def group_dependencies(group: str) -> tuple[str, ...]:
    """The earlier groups whose models this group's models reference (the Dagster asset edges)."""
    referenced = set()
    for spec in models_of_group(group):
        for spec_field in spec.comparable():
            if spec_field.kind is Kind.GENERIC:
                # A generic reference (a contact's object, a cable's endpoints) may point into any earlier group.
                referenced.update(GROUPS[:GROUPS.index(group)])
            elif spec_field.target:
                referenced.add(MODELS[spec_field.target].group)
    referenced.discard(None)
    referenced.discard(group)
    return tuple(g for g in GROUPS if g in referenced)


def discovery_placements() -> Iterator[tuple[ModelSpec, tuple[str, ...], str]]:
    """(discovered model, reference path, synced model at its end) for every declared `discovered_in`."""
    for spec in MODELS.values():
        for path in spec.discovered_in:
            hops, target = tuple(path.split(".")), spec
            for hop in hops:
                target = MODELS[target.field(hop).target]
            yield spec, hops, target.label


def holder_models() -> tuple[str, ...]:
    """The synced models whose objects are discovery-touched when discovered objects sit in them."""
    return tuple(dict.fromkeys(holder for _spec, _path, holder in discovery_placements()))


def validate_registry() -> None:
    """Fail fast on an entry that names an unknown model or field, or references a later group."""
    order = {group: index for index, group in enumerate(GROUPS)}
    for spec in MODELS.values():
        for spec_field in spec.fields.values():
            if spec_field.target and spec_field.target not in MODELS:
                raise ValueError(f"{spec.label}.{spec_field.name}: unknown model {spec_field.target!r}")
            if spec_field.kind is Kind.GENERIC and spec.fields.get(spec_field.type_field, ref("")).kind \
                    is not Kind.CONTENT_TYPE:
                raise ValueError(f"{spec.label}.{spec_field.name}: {spec_field.type_field!r} must be declared "
                                 "as its CONTENT_TYPE field")
        for name in (*spec.key, *spec.required, *spec.safe, *spec.deferred):
            if name not in spec.fields:
                raise ValueError(f"{spec.label}: {name!r} is not one of its fields")
        for path in spec.discovered_in:
            target = spec
            for hop in path.split("."):
                hop_field = target.fields.get(hop)
                if hop_field is None or hop_field.kind is not Kind.REFERENCE:
                    raise ValueError(f"{spec.label}: discovered_in {path!r}: {hop!r} is not a reference")
                target = MODELS[hop_field.target]
            if not target.synced:
                raise ValueError(f"{spec.label}: discovered_in {path!r} ends in {target.label}, which is not synced")
        if not spec.synced:
            continue
        if spec.group not in order:
            raise ValueError(f"{spec.label}: unknown group {spec.group!r}")
        for spec_field in spec.fields.values():
            target_group = MODELS[spec_field.target].group if spec_field.target else None
            if target_group is not None and order[target_group] > order[spec.group]:
                raise ValueError(f"{spec.label}.{spec_field.name} references {spec_field.target}, "
                                 "which syncs in a later group")
        if spec.tree and spec.fields.get(spec.tree) != replace(ref(spec.label), name=spec.tree):
            raise ValueError(f"{spec.label}: tree field {spec.tree!r} must reference the model itself")
        if spec.tree_type and not (spec.tree and spec.tree_type in spec.fields
                                   and MODELS[spec.field(spec.tree_type).target or ""].tree):
            raise ValueError(f"{spec.label}: tree type {spec.tree_type!r} must reference a tree model from a tree")


validate_registry()
