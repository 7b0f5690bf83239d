"""Supplementary production seed for the local stack: the models `generate_test_data` leaves empty.

Run with the Nautobot venv's python and the environment of `Stack.nautobot_env(db)`, after
`nautobot-server generate_test_data --seed S --flush --no-input` filled the same database:

    seed_production.py --seed S [--scale N] --discovery-plan PATH

It adds nested rack groups, racks, rack reservations, power panels and feeds, module families, custom fields
(with values), config context schemas and contexts, export templates, secrets and secrets groups, contact
associations and cables. `--scale N` adds about N more objects spread over the synced models (benchmarks).
Last it writes the discovery plan: the natural keys and attributes `seed_discovery.py` needs to recreate some
of these objects in VeritasBot under other UUIDs, as a discovery job would have.

Deterministic for a given seed: every choice and every UUID comes from `random.Random` streams seeded with it,
drawing over querysets in a fixed order; the --scale objects have a stream of their own, so everything else
(and the plan) is the same at any scale. Different seeds make generate_test_data produce different objects, so
nothing is looked up by name: objects are picked from what is there and created when missing. Everything is
written in one transaction, so a failure leaves the database as generate_test_data left it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import nautobot

nautobot.setup()

from django.apps import apps  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models.signals import m2m_changed  # noqa: E402
from nautobot.circuits.models import Circuit, CircuitTermination, CircuitType, Provider, ProviderNetwork  # noqa: E402
from nautobot.dcim.choices import (  # noqa: E402
    CableLengthUnitChoices,
    CableTypeChoices,
    InterfaceTypeChoices,
    PowerFeedPhaseChoices,
    PowerFeedSupplyChoices,
    PowerFeedTypeChoices,
    PowerPanelTypeChoices,
    PowerPathChoices,
    RackDimensionUnitChoices,
    RackTypeChoices,
    RackWidthChoices,
)
from nautobot.dcim.constants import NONCONNECTABLE_IFACE_TYPES  # noqa: E402
from nautobot.dcim.models import (  # noqa: E402
    Cable,
    Device,
    DeviceFamily,
    DeviceType,
    Interface,
    Location,
    LocationType,
    Manufacturer,
    ModuleFamily,
    ModuleType,
    Platform,
    PowerFeed,
    PowerPanel,
    Rack,
    RackGroup,
    RackReservation,
    SoftwareVersion,
)
from nautobot.extras.choices import (  # noqa: E402
    CustomFieldTypeChoices,
    SecretsGroupAccessTypeChoices,
    SecretsGroupSecretTypeChoices,
)
from nautobot.extras.customfields import provision_field  # noqa: E402
from nautobot.extras.models import (  # noqa: E402
    ConfigContext,
    ConfigContextSchema,
    Contact,
    ContactAssociation,
    CustomField,
    CustomFieldChoice,
    ExportTemplate,
    ExternalIntegration,
    Role,
    Secret,
    SecretsGroup,
    SecretsGroupAssociation,
    Status,
    Tag,
    Team,
)
from nautobot.extras.signals import handle_cf_removed_obj_types  # noqa: E402
from nautobot.extras.utils import TaggableClassesQuery  # noqa: E402
from nautobot.tenancy.models import Tenant, TenantGroup  # noqa: E402
from nautobot.wireless.choices import (  # noqa: E402
    RadioProfileChannelWidthChoices,
    RadioProfileFrequencyChoices,
    RadioProfileRegulatoryDomainChoices,
    SupportedDataRateStandardChoices,
    WirelessNetworkAuthenticationChoices,
    WirelessNetworkModeChoices,
)
from nautobot.wireless.models import RadioProfile, SupportedDataRate, WirelessNetwork  # noqa: E402

PLAN_FORMAT = 1
BULK_BATCH = 1000
SCALE_DEVICE_INTERFACES = 50  # interfaces of each --scale device (and of each --discovery-scale device)
# Status names are the labels of Nautobot's built-in status choices, so they normally exist already.
STATUS_COLORS = {"Active": "4caf50", "Planned": "00bcd4", "Reserved": "00bcd4", "Available": "4caf50",
                 "Deprecated": "f44336", "Offline": "ffc107", "Failed": "f44336", "Connected": "4caf50",
                 "Decommissioning": "ffc107", "Primary": "2196f3", "Secondary": "9e9e9e"}
USER_MODEL = get_user_model()
# Picks draw over querysets in natural-key order: stable for a seed whatever the UUIDs of the picked rows.
NATURAL_ORDER = {
    Location: ("name",), Rack: ("name",), Tenant: ("name",), Provider: ("name",), Device: ("name",),
    Circuit: ("provider__name", "cid"), DeviceType: ("manufacturer__name", "model"),
}


# ---------------------------------------------------------------------------------------------- shared helpers
# seed_discovery.py imports these, so both seeds create objects the same way.

def model_label(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def content_type(model) -> ContentType:
    return ContentType.objects.get_for_model(model)


def allow_content_types(obj, *models) -> None:
    """Add models to `obj.content_types` (Status, Role, Tag, LocationType, CustomField).

    Only models inside the field's `limit_choices_to` are accepted: the REST API refuses the others, so the sync
    could never copy such a row to VeritasBot.
    """
    field = obj._meta.get_field("content_types")
    permitted = set(ContentType.objects.complex_filter(field.get_limit_choices_to()).values_list("pk", flat=True))
    wanted = [content_type(model) for model in models]
    refused = [f"{ct.app_label}.{ct.model}" for ct in wanted if ct.pk not in permitted]
    if refused:
        raise SystemExit(f"{obj._meta.label} {obj}: content types {refused} are not permitted on this field")
    obj.content_types.add(*wanted)


class Seeder:
    """Seeded randomness, seeded UUIDs, validated creation and a count of what was created."""

    def __init__(self, seed: str, purpose: str) -> None:
        self.rng = random.Random(f"{purpose}:{seed}")
        self.created: Counter[str] = Counter()

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def pick(self, items):
        return self.rng.choice(list(items))

    def maybe(self, items, chance: float = 0.5):
        items = list(items)
        return self.rng.choice(items) if items and self.rng.random() < chance else None

    def sample(self, items, count: int) -> list:
        items = list(items)
        return self.rng.sample(items, max(0, min(count, len(items))))

    def create(self, model, /, **fields):
        obj = model(id=self.new_id(), **fields)
        obj.validated_save()
        self.created[model_label(model)] += 1
        return obj

    def bulk_create(self, model, objects: list) -> list:
        """bulk_create skips save(), clean() and signals: only for models whose save() adds nothing."""
        model.objects.bulk_create(objects, batch_size=BULK_BATCH)
        self.created[model_label(model)] += len(objects)
        return objects

    def status(self, name: str, *models) -> Status:
        status = Status.objects.filter(name=name).first()
        if status is None:
            status = self.create(Status, name=name, color=STATUS_COLORS.get(name, "9e9e9e"))
        allow_content_types(status, *models)
        return status

    def role(self, name: str, *models) -> Role:
        role = Role.objects.filter(name=name).first()
        if role is None:
            role = self.create(Role, name=name, color="9e9e9e")
        allow_content_types(role, *models)
        return role

    def print_counts(self, title: str) -> None:
        print(f"{title}: created {sum(self.created.values())} objects")
        for label, count in sorted(self.created.items()):
            print(f"  {label:40} {count:7}")


def ordered(model):
    return model.objects.order_by(*NATURAL_ORDER[model], "pk")


def lineage(node) -> list:
    """A tree node (Location, LocationType, RackGroup) and its ancestors, root first; [] for None."""
    chain = []
    while node is not None:
        chain.append(node)
        node = node.parent
    return chain[::-1]


# ---------------------------------------------------------------------------------------------- custom fields
@dataclass(frozen=True)
class CustomFieldSpec:
    key: str
    type: str
    models: tuple[str, ...]
    default: object = None
    choices: tuple[str, ...] = ()


CUSTOM_FIELDS = (
    CustomFieldSpec("cost_center", CustomFieldTypeChoices.TYPE_TEXT,
                    ("tenancy.tenant", "dcim.location", "circuits.circuit")),
    CustomFieldSpec("power_budget_watts", CustomFieldTypeChoices.TYPE_INTEGER,
                    ("dcim.rack", "dcim.location"), default=5000),
    CustomFieldSpec("monitored", CustomFieldTypeChoices.TYPE_BOOLEAN,
                    ("dcim.location", "dcim.rack", "circuits.circuit", "circuits.provider"), default=True),
    CustomFieldSpec("commissioned_on", CustomFieldTypeChoices.TYPE_DATE,
                    ("dcim.rack", "circuits.circuit", "circuits.provider")),
    CustomFieldSpec("runbook_url", CustomFieldTypeChoices.TYPE_URL,
                    ("dcim.devicetype", "circuits.provider", "tenancy.tenant")),
    CustomFieldSpec("vendor_metadata", CustomFieldTypeChoices.TYPE_JSON, ("dcim.devicetype", "circuits.provider")),
    CustomFieldSpec("support_tier", CustomFieldTypeChoices.TYPE_SELECT,
                    ("tenancy.tenant", "circuits.circuit", "dcim.location", "circuits.provider"),
                    default="Silver", choices=("Gold", "Silver", "Bronze")),
    CustomFieldSpec("environments", CustomFieldTypeChoices.TYPE_MULTISELECT,
                    ("dcim.location", "dcim.rack", "tenancy.tenant", "dcim.devicetype"),
                    choices=("production", "staging", "lab", "dr")),
)


# ---------------------------------------------------------------------------------------------- the seed
class ProductionSeeder(Seeder):
    def __init__(self, seed: str) -> None:
        super().__init__(seed, "production")
        self.seed = seed
        self.rack_locations: list[Location] = []
        self.rack_groups_by_location: dict = defaultdict(list)
        self.racks_by_location: dict = defaultdict(list)
        self.cables: list[Cable] = []
        self.cable_devices: list[Device] = []

    def run(self) -> None:
        self.seed_rack_locations()
        self.seed_rack_groups()
        self.seed_racks()
        self.seed_rack_reservations()
        self.seed_power()
        self.seed_module_families()
        self.seed_custom_fields()
        self.seed_config_contexts()
        self.seed_export_templates()
        self.seed_secrets()
        self.seed_contact_associations()
        self.seed_cables()

    # ------------------------------------------------------------------ racks and power
    def seed_rack_locations(self) -> None:
        """One of the deepest locations (a long ancestor chain for the plan) and three others."""
        locations = list(Location.objects.order_by("name", "pk"))
        depth = {location.pk: len(lineage(location)) for location in locations}
        deepest = max(depth.values())
        first = self.pick(location for location in locations if depth[location.pk] == deepest)
        others = self.sample((location for location in locations if location != first), 3)
        self.rack_locations = [first, *others]
        for location in self.rack_locations:
            allow_content_types(location.location_type, Rack, RackGroup, PowerPanel, CircuitTermination)
            # PowerFeed has no location, so it is not a "locations" content type and LocationType refuses it.

    def seed_rack_groups(self) -> None:
        """Per location: a hall with two rows; the first location also gets a cage inside a row (3 levels)."""
        for index, location in enumerate(self.rack_locations):
            hall = self.create(RackGroup, name="Data Hall", location=location, description=f"Main hall of {location}")
            rows = [self.create(RackGroup, name=f"Row {letter}", location=location, parent=hall) for letter in "AB"]
            groups = [hall, *rows]
            if index == 0:
                groups.append(self.create(RackGroup, name="Cage 1", location=location, parent=rows[0],
                                          description="Caged area for a tenant"))
            self.rack_groups_by_location[location.pk] = groups

    def seed_racks(self) -> None:
        statuses = [self.status(name, Rack) for name in ("Active", "Planned", "Reserved", "Available", "Deprecated")]
        roles = self.roles_for(Rack, 3)
        tenants = list(ordered(Tenant))
        tags = self.tags_for(Rack, 2)
        number = 0
        for location in self.rack_locations:
            groups = self.rack_groups_by_location[location.pk]
            # Racks sit in the rows and the cage, and one stands outside any group.
            for group in [*groups[1:], None]:
                number += 1
                rack = self.create(Rack, name=f"{location.name}-R{number:02d}", location=location, rack_group=group,
                                   status=statuses[number % len(statuses)], role=self.maybe(roles, 0.7),
                                   tenant=self.maybe(tenants), **self.rack_attributes(number, group))
                if number % 3 == 0:
                    rack.tags.add(self.pick(tags))
                self.racks_by_location[location.pk].append(rack)

    def rack_attributes(self, number: int, group: RackGroup | None) -> dict:
        attributes = {
            "u_height": self.pick([42, 45, 48, 24, 12]),
            "width": self.pick(RackWidthChoices.values()),
            "type": self.pick(RackTypeChoices.values()),
            "desc_units": self.rng.random() < 0.3,
            "serial": f"SN{self.rng.getrandbits(40):012X}",
            "asset_tag": f"RACK-{self.rng.getrandbits(32):08x}" if number % 4 else None,
            # facility_id is unique per rack group only, so ungrouped racks leave it empty.
            "facility_id": f"FAC-{number:03d}" if group else None,
            "comments": "Seeded rack" if number % 2 else "",
        }
        if number % 2:
            attributes.update(outer_width=600, outer_depth=1200, outer_unit=RackDimensionUnitChoices.UNIT_MILLIMETER)
        return attributes

    def seed_rack_reservations(self) -> None:
        user = self.reservation_user()
        tenants = list(ordered(Tenant))
        racks = [rack for location in self.rack_locations for rack in self.racks_by_location[location.pk]]
        for rack in racks[:4]:
            for first_unit, size, purpose in ((1, 3, "Core switching"), (8, 2, "Customer expansion")):
                self.create(RackReservation, rack=rack, units=list(range(first_unit, first_unit + size)), user=user,
                            tenant=self.maybe(tenants, 0.6), description=f"{purpose} ({rack.name})")

    def reservation_user(self):
        user = USER_MODEL.objects.order_by("username").first()
        if user is None:
            user = USER_MODEL.objects.create(id=self.new_id(), username="rack-planner")
            self.created[model_label(USER_MODEL)] += 1
        return user

    def seed_power(self) -> None:
        statuses = {name: self.status(name, PowerFeed) for name in ("Active", "Planned", "Offline", "Failed")}
        for location in self.rack_locations:
            racks = self.racks_by_location[location.pk]
            hall = self.rack_groups_by_location[location.pk][0]
            panel_a = self.create(PowerPanel, name="PP-A", location=location, rack_group=hall,
                                  panel_type=PowerPanelTypeChoices.TYPE_RPP, power_path=PowerPathChoices.PATH_A,
                                  breaker_position_count=42)
            panel_b = self.create(PowerPanel, name="PP-B", location=location,
                                  panel_type=PowerPanelTypeChoices.TYPE_PANELBOARD, power_path=PowerPathChoices.PATH_B)
            self.create(PowerFeed, power_panel=panel_a, name="Feed A1", rack=racks[0], status=statuses["Active"],
                        voltage=208, amperage=30, phase=PowerFeedPhaseChoices.PHASE_SINGLE, breaker_position=1)
            self.create(PowerFeed, power_panel=panel_a, name="Feed A2", rack=racks[1], status=statuses["Planned"],
                        voltage=400, amperage=32, phase=PowerFeedPhaseChoices.PHASE_3PHASE, breaker_position=7,
                        breaker_pole_count=3, type=PowerFeedTypeChoices.TYPE_REDUNDANT)
            self.create(PowerFeed, power_panel=panel_b, name="Feed B1", destination_panel=panel_a,
                        status=statuses["Offline"], voltage=230, amperage=63, power_path=PowerPathChoices.PATH_B)
            self.create(PowerFeed, power_panel=panel_b, name="Feed B2", rack=racks[-1], status=statuses["Failed"],
                        supply=PowerFeedSupplyChoices.SUPPLY_DC, voltage=-48, amperage=20, max_utilization=80)

    def seed_module_families(self) -> None:
        families = [self.create(ModuleFamily, name=name, description=f"{name} modules")
                    for name in ("Line Cards", "Power Supplies", "Fan Trays", "Supervisor Engines")]
        for index, module_type in enumerate(ModuleType.objects.order_by("manufacturer__name", "model")):
            if index % 2 == 0:
                module_type.module_family = self.pick(families)
                module_type.validated_save()

    # ------------------------------------------------------------------ metadata
    def seed_custom_fields(self) -> None:
        # No Celery worker runs here: the content-type signal would try to enqueue a provisioning job (and log an
        # error without a user), so it is disconnected; provision_custom_field_defaults() does that work at the end.
        m2m_changed.disconnect(handle_cf_removed_obj_types, sender=CustomField.content_types.through)
        fields = [self.create_custom_field(spec) for spec in CUSTOM_FIELDS]
        self.set_custom_field_values(fields)

    def create_custom_field(self, spec: CustomFieldSpec) -> CustomField:
        label = spec.key.replace("_", " ").capitalize()
        # A select default must be one of the choices, and choices need the field: set the default last.
        field = self.create(CustomField, key=spec.key, label=label, type=spec.type,
                            description=f"Seeded {spec.type} field", grouping="Operations" if spec.default else "")
        for weight, value in enumerate(spec.choices, start=1):
            self.create(CustomFieldChoice, custom_field=field, value=value, weight=weight * 100)
        field.content_types.set([content_type(apps.get_model(label)) for label in spec.models])
        if spec.default is not None:
            field.default = spec.default
            field.validated_save()
        return field

    def set_custom_field_values(self, fields: list[CustomField]) -> None:
        for model in (Location, Rack, Tenant, Circuit, DeviceType, Provider):
            applicable = [field for field in fields if content_type(model) in field.content_types.all()]
            for obj in self.sample(ordered(model), 4):
                for field in applicable:
                    obj._custom_field_data[field.key] = field.validate(self.custom_field_value(field))
                obj.save()

    def custom_field_value(self, field: CustomField):
        values = {
            CustomFieldTypeChoices.TYPE_TEXT: lambda: f"CC-{self.rng.randint(1000, 9999)}",
            CustomFieldTypeChoices.TYPE_INTEGER: lambda: self.rng.randint(1, 40) * 250,
            CustomFieldTypeChoices.TYPE_BOOLEAN: lambda: self.rng.random() < 0.5,
            CustomFieldTypeChoices.TYPE_DATE: lambda: str(datetime.date(2015, 1, 1)
                                                          + datetime.timedelta(days=self.rng.randint(0, 3650))),
            CustomFieldTypeChoices.TYPE_URL: lambda: f"https://wiki.example.com/runbooks/{self.rng.randint(1, 999)}",
            CustomFieldTypeChoices.TYPE_JSON: lambda: {"vendor_id": self.rng.randint(1, 9999),
                                                       "contract": {"renewal": self.rng.choice([True, False])}},
            CustomFieldTypeChoices.TYPE_SELECT: lambda: self.pick(field.choices),
            CustomFieldTypeChoices.TYPE_MULTISELECT: lambda: sorted(self.sample(field.choices, 2)),
        }
        return values[field.type]()

    def seed_config_contexts(self) -> None:
        ntp = self.create(ConfigContextSchema, name="NTP settings", description="NTP servers of a site", data_schema={
            "type": "object",
            "properties": {"ntp": {"type": "object", "required": ["servers"], "properties": {
                "servers": {"type": "array", "items": {"type": "string"}}, "prefer": {"type": "string"}}}},
        })
        syslog = self.create(ConfigContextSchema, name="Syslog settings", data_schema={
            "type": "object",
            "properties": {"syslog": {"type": "object", "properties": {
                "servers": {"type": "array", "items": {"type": "string"}}, "facility": {"type": "string"}}}},
        })
        device_roles = self.sample(self.roles_for(Device, 2), 2)
        # (name, schema, data, M2M assignments, is_active)
        contexts = [
            ("NTP global", ntp, {"ntp": {"servers": self.addresses(3)}}, {}, True),
            ("NTP by location", ntp, {"ntp": {"servers": self.addresses(2), "prefer": self.addresses(1)[0]}},
             {"locations": self.rack_locations[:2]}, True),
            ("Syslog by role", syslog, {"syslog": {"servers": self.addresses(2), "facility": "local7"}},
             {"roles": device_roles}, True),
            ("Platform defaults", None, {"snmp": {"community_ref": "snmp-ro", "version": "v3"}},
             {"platforms": self.sample(Platform.objects.order_by("name"), 2),
              "device_types": self.sample(ordered(DeviceType), 2)}, True),
            ("Tenant DNS", None, {"dns": {"servers": self.addresses(2), "search": ["corp.example.com"]}},
             {"tenants": self.sample(ordered(Tenant), 2),
              "tenant_groups": self.sample(TenantGroup.objects.order_by("name"), 1)}, True),
            ("Tagged banner", None, {"banner": "Authorised access only"},
             {"tags": self.sample(Tag.objects.order_by("name"), 2)}, False),
        ]
        for weight, (name, schema, data, assignments, is_active) in enumerate(contexts, start=1):
            context = self.create(ConfigContext, name=name, weight=weight * 100, data=data, is_active=is_active,
                                  config_context_schema=schema, description=f"Seeded context {name}")
            for field, objects in assignments.items():
                getattr(context, field).set(objects)

    def addresses(self, count: int) -> list[str]:
        return [f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
                for _ in range(count)]

    def seed_export_templates(self) -> None:
        templates = (
            (Rack, "Rack inventory", "csv", "text/csv",
             "name,location,u_height\n{% for rack in queryset %}{{ rack.name }},{{ rack.location.name }},"
             "{{ rack.u_height }}\n{% endfor %}"),
            (Location, "Location addresses", "txt", "text/plain",
             "{% for location in queryset %}{{ location.name }}: {{ location.physical_address }}\n{% endfor %}"),
            (Tenant, "Tenant list", "md", "text/markdown",
             "| Tenant |\n|---|\n{% for tenant in queryset %}| {{ tenant.name }} |\n{% endfor %}"),
            (Circuit, "Circuit IDs", "csv", "text/csv",
             "provider,cid\n{% for circuit in queryset %}{{ circuit.provider.name }},{{ circuit.cid }}\n{% endfor %}"),
        )
        for model, name, extension, mime_type, code in templates:
            self.create(ExportTemplate, content_type=content_type(model), name=name, template_code=code,
                        file_extension=extension, mime_type=mime_type, description=f"Seeded export of {name.lower()}")

    def seed_secrets(self) -> None:
        secrets = {
            "napalm-username": ("environment-variable", {"variable": "NAPALM_USERNAME"}),
            "napalm-password": ("environment-variable", {"variable": "NAPALM_PASSWORD"}),
            "snmp-community": ("text-file", {"path": "/opt/nautobot/secrets/snmp-community.txt"}),
            "ssh-private-key": ("text-file", {"path": "/opt/nautobot/secrets/id_ed25519"}),
            "itsm-api-token": ("environment-variable", {"variable": "ITSM_API_TOKEN"}),
        }
        created = {name: self.create(Secret, name=name, provider=provider, parameters=parameters,
                                     description=f"Reference to the {name.replace('-', ' ')}")
                   for name, (provider, parameters) in secrets.items()}
        access, kind = SecretsGroupAccessTypeChoices, SecretsGroupSecretTypeChoices
        groups = {
            "Network devices": [(access.TYPE_GENERIC, kind.TYPE_USERNAME, "napalm-username"),
                                (access.TYPE_GENERIC, kind.TYPE_PASSWORD, "napalm-password"),
                                (access.TYPE_SSH, kind.TYPE_PRIVKEY, "ssh-private-key"),
                                (access.TYPE_SNMP, kind.TYPE_SECRET, "snmp-community")],
            "ITSM integration": [(access.TYPE_REST, kind.TYPE_TOKEN, "itsm-api-token"),
                                 (access.TYPE_HTTP, kind.TYPE_USERNAME, "napalm-username")],
        }
        secrets_groups = {}
        for name, associations in groups.items():
            group = secrets_groups[name] = self.create(SecretsGroup, name=name, description=f"Credentials: {name}")
            for access_type, secret_type, secret in associations:
                self.create(SecretsGroupAssociation, secrets_group=group, access_type=access_type,
                            secret_type=secret_type, secret=created[secret])
        # Objects of earlier sync groups reference secrets groups; give that reference something to carry.
        integration = ExternalIntegration.objects.order_by("name").first()
        if integration is not None:
            integration.secrets_group = secrets_groups["ITSM integration"]
            integration.validated_save()

    def seed_contact_associations(self) -> None:
        roles = self.roles_for(ContactAssociation, 2)
        statuses = [self.status(name, ContactAssociation) for name in ("Primary", "Secondary", "Active")]
        contacts = list(Contact.objects.order_by("name", "pk")) or [self.create(Contact, name="NOC on call")]
        teams = list(Team.objects.order_by("name", "pk")) or [self.create(Team, name="Network Operations")]
        targets = {model: self.sample(ordered(model), 3) for model in (Location, Tenant, Circuit, Device)}
        for model, objects in targets.items():
            for obj in objects:
                for owner in ({"contact": self.pick(contacts)}, {"team": self.pick(teams)}):
                    self.create(ContactAssociation, associated_object_type=content_type(model),
                                associated_object_id=obj.pk, role=self.pick(roles), status=self.pick(statuses),
                                **owner)

    # ------------------------------------------------------------------ cables
    def seed_cables(self) -> None:
        """Interface cables between six devices and two circuit-termination cables.

        The plan mirrors devices 0-3 in VeritasBot: cables 0-1 join two mirrored devices, cables 2-3 reach an
        unmirrored device (their sync stays pending), and the circuit cables hang on devices 2 and 5.
        """
        statuses = [self.status(name, Cable) for name in ("Connected", "Planned", "Decommissioning")]
        self.cable_devices = self.devices_for_cables(6)
        devices = self.cable_devices
        for a, b in ((0, 1), (2, 3), (0, 4), (1, 5)):
            self.cable(self.free_interface(devices[a]), self.free_interface(devices[b]), statuses)
        for index in (2, 5):
            termination = self.new_circuit_termination(devices[index].location)
            self.cable(termination, self.free_interface(devices[index]), statuses)

    def cable(self, termination_a, termination_b, statuses: list[Status]) -> Cable:
        number = len(self.cables) + 1
        cable = self.create(Cable, termination_a=termination_a, termination_b=termination_b,
                            status=statuses[(number - 1) % len(statuses)], label=f"CBL-{number:04d}",
                            type=self.pick([CableTypeChoices.TYPE_CAT6, CableTypeChoices.TYPE_SMF_OS2,
                                            CableTypeChoices.TYPE_MMF_OM4, CableTypeChoices.TYPE_DAC_PASSIVE]),
                            color=self.pick(["2196f3", "ffeb3b", "9e9e9e"]), length=self.rng.randint(1, 30),
                            length_unit=CableLengthUnitChoices.UNIT_METER)
        self.cables.append(cable)
        return cable

    def devices_for_cables(self, count: int) -> list[Device]:
        devices = list(ordered(Device).exclude(name__isnull=True))
        while len(devices) < count:
            devices.append(self.new_device(len(devices) + 1))
        return self.sample(devices, count)

    def new_device(self, number: int) -> Device:
        locations = Location.objects.filter(location_type__content_types=content_type(Device))
        location = self.pick(locations.order_by("name", "pk"))
        return self.create(Device, name=f"seed-device-{number:02d}", location=location,
                           device_type=self.pick(ordered(DeviceType)),
                           role=self.roles_for(Device, 1)[0], status=self.status("Active", Device))

    def free_interface(self, device: Device) -> Interface:
        """A cable-able interface of the device itself (not of a module); a new one when none is free."""
        free = (device.interfaces.filter(module__isnull=True, cable_termination__isnull=True)
                .exclude(type__in=NONCONNECTABLE_IFACE_TYPES).order_by("_name"))
        if free.exists():
            return free.first()
        taken = set(device.interfaces.values_list("name", flat=True))
        name = next(f"Ethernet1/{n}" for n in range(1, 1000) if f"Ethernet1/{n}" not in taken)
        interface_type = self.pick([InterfaceTypeChoices.TYPE_1GE_FIXED, InterfaceTypeChoices.TYPE_10GE_SFP_PLUS])
        return self.create(Interface, device=device, name=name, type=interface_type,
                           status=self.status("Active", Interface))

    def new_circuit_termination(self, location: Location) -> CircuitTermination:
        """The missing side of some circuit, terminated at the location of the device it is cabled to."""
        allow_content_types(location.location_type, CircuitTermination)
        for circuit in Circuit.objects.order_by("provider__name", "cid"):
            sides = set(circuit.circuit_terminations.values_list("term_side", flat=True))
            missing = [side for side in ("A", "Z") if side not in sides]
            if missing:
                break
        else:
            circuit, missing = self.new_circuit(), ["A"]
        return self.create(CircuitTermination, circuit=circuit, term_side=missing[0], location=location,
                           port_speed=self.pick([100000, 1000000, 10000000]),
                           xconnect_id=f"XC-{self.rng.getrandbits(24):06X}", pp_info="Patch panel 1, port 4")

    def new_circuit(self) -> Circuit:
        provider = Provider.objects.order_by("name").first() or self.create(Provider, name="Seed Carrier")
        circuit_type = CircuitType.objects.order_by("name").first() or self.create(CircuitType, name="Internet")
        return self.create(Circuit, cid=f"SEED-{self.rng.getrandbits(24):06X}", provider=provider,
                           circuit_type=circuit_type, status=self.status("Active", Circuit))

    # ------------------------------------------------------------------ picking with content types
    def roles_for(self, model, count: int) -> list[Role]:
        """Roles usable on the model: those already allowed, topped up by allowing it on other roles."""
        roles = list(Role.objects.get_for_model(model).order_by("name"))
        others = [role for role in Role.objects.order_by("name") if role not in roles]
        for role in self.sample(others, count - len(roles)):
            allow_content_types(role, model)
            roles.append(role)
        while len(roles) < count:
            roles.append(self.role(f"Seed {model._meta.verbose_name} role {len(roles) + 1}", model))
        return roles

    def tags_for(self, model, count: int) -> list[Tag]:
        tags = self.sample(Tag.objects.order_by("name"), count)
        for tag in tags:
            allow_content_types(tag, model)
        return tags


def provision_custom_field_defaults() -> None:
    """What Nautobot's worker does when a custom field gets content types: give every object its default."""
    for field in CustomField.objects.exclude(default__isnull=True).order_by("key"):
        provision_field(field.pk, list(field.content_types.values_list("pk", flat=True)))


class DiscoveryPlan:
    """What seed_discovery.py recreates in VeritasBot, chosen from this seed's objects.

    Objects are listed parents first and referenced by natural key (lists, as `natural_key()` returns them);
    `production_id` lets the discovery seed prove its UUIDs differ and lets tests check adoption.
    """

    def __init__(self, seeder: ProductionSeeder) -> None:
        self.seeder = seeder
        self.locations: dict = {}
        self.statuses: dict[str, set] = defaultdict(set)
        self.roles: dict[str, set] = defaultdict(set)

    def build(self) -> dict:
        seeder = self.seeder
        devices = seeder.cable_devices[:4]
        racks = self.chosen_racks()
        platforms = self.platforms(devices)
        tenants = self.tenants(devices)
        for location in [seeder.rack_locations[0], *(rack.location for rack in racks),
                         *(device.location for device in devices)]:
            self.add_location_lineage(location)
        device_types = {device.device_type.pk: device.device_type for device in devices}.values()
        manufacturers = {obj.manufacturer.pk: obj.manufacturer for obj in [*device_types, *platforms]}.values()
        return {
            "format": PLAN_FORMAT,
            "seed": seeder.seed,
            "manufacturers": [self.named(manufacturer) for manufacturer in manufacturers],
            "platforms": [{**self.named(platform), "network_driver": platform.network_driver,
                           "manufacturer": platform.manufacturer.name if platform.manufacturer else None}
                          for platform in platforms],
            "tenants": [self.named(tenant) for tenant in tenants],
            "location_types": self.location_types(),
            "locations": [self.location(location) for location in self.locations.values()],
            "rack_groups": self.rack_groups(racks),
            "racks": [self.rack(rack) for rack in racks],
            "device_types": [self.device_type(device_type) for device_type in device_types],
            "devices": [self.device(device) for device in devices],
            "cables": [self.cable(cable, devices) for cable in seeder.cables],
            # Filled while the entries above were built.
            "statuses": [{"name": name, "content_types": sorted(cts)} for name, cts in sorted(self.statuses.items())],
            "roles": [{"name": name, "content_types": sorted(cts)} for name, cts in sorted(self.roles.items())],
        }

    def chosen_racks(self) -> list[Rack]:
        """From the deepest location the racks in the cage (three group levels) and in row A; from another
        location its ungrouped rack."""
        seeder = self.seeder
        row_a, _row_b, cage, _ungrouped = seeder.racks_by_location[seeder.rack_locations[0].pk]
        other = seeder.racks_by_location[seeder.pick(seeder.rack_locations[1:]).pk]
        return [cage, row_a, other[-1]]

    def platforms(self, devices: list[Device]) -> list[Platform]:
        platforms = {device.platform.pk: device.platform for device in devices if device.platform}
        if not platforms:
            platform = self.seeder.pick(Platform.objects.filter(manufacturer__isnull=False).order_by("name"))
            platforms[platform.pk] = platform
        return list(platforms.values())

    def tenants(self, devices: list[Device]) -> list[Tenant]:
        tenants = {device.tenant.pk: device.tenant for device in devices if device.tenant}
        extra = self.seeder.pick(ordered(Tenant))
        tenants.setdefault(extra.pk, extra)
        return list(tenants.values())

    def add_location_lineage(self, location: Location) -> None:
        for ancestor in lineage(location):
            self.locations.setdefault(ancestor.pk, ancestor)

    def location_types(self) -> list[dict]:
        types = {}
        for location in self.locations.values():
            for location_type in lineage(location.location_type):
                types.setdefault(location_type.pk, location_type)
        by_depth = sorted(types.values(), key=lambda t: (len(lineage(t)), t.name))
        return [{"name": t.name, "parent": t.parent.name if t.parent else None, "nestable": t.nestable,
                 "natural_key": t.natural_key(), "production_id": str(t.pk)} for t in by_depth]

    def location(self, location: Location) -> dict:
        self.statuses[location.status.name].add("dcim.location")
        return {"name": location.name, "parent": location.parent.natural_key() if location.parent else None,
                "location_type": location.location_type.name, "status": location.status.name,
                "natural_key": location.natural_key(), "production_id": str(location.pk)}

    def rack_groups(self, racks: list[Rack]) -> list[dict]:
        groups = {}
        for rack in racks:
            for group in lineage(rack.rack_group):
                groups.setdefault(group.pk, group)
        return [{"name": group.name, "location": group.location.natural_key(),
                 "parent": group.parent.natural_key() if group.parent else None,
                 "natural_key": group.natural_key(), "production_id": str(group.pk)} for group in groups.values()]

    def rack(self, rack: Rack) -> dict:
        self.statuses[rack.status.name].add("dcim.rack")
        return {"name": rack.name, "location": rack.location.natural_key(),
                "rack_group": rack.rack_group.natural_key() if rack.rack_group else None,
                "status": rack.status.name, "u_height": rack.u_height,
                "natural_key": rack.natural_key(), "production_id": str(rack.pk)}

    @staticmethod
    def named(obj) -> dict:
        return {"name": obj.name, "natural_key": obj.natural_key(), "production_id": str(obj.pk)}

    @staticmethod
    def device_type(device_type: DeviceType) -> dict:
        return {"manufacturer": device_type.manufacturer.name, "model": device_type.model,
                "u_height": device_type.u_height, "subdevice_role": device_type.subdevice_role,
                "natural_key": device_type.natural_key(), "production_id": str(device_type.pk)}

    def device(self, device: Device) -> dict:
        self.statuses[device.status.name].add("dcim.device")
        self.roles[device.role.name].add("dcim.device")
        interfaces = device.interfaces.filter(module__isnull=True).order_by("_name")
        for interface in interfaces:
            self.statuses[interface.status.name].add("dcim.interface")
        return {
            "name": device.name, "tenant": device.tenant.name if device.tenant else None,
            "location": device.location.natural_key(),
            "device_type": device.device_type.natural_key(), "role": device.role.name, "status": device.status.name,
            "platform": device.platform.name if device.platform else None,
            "natural_key": device.natural_key(), "production_id": str(device.pk),
            "interfaces": [{"name": interface.name, "type": interface.type, "status": interface.status.name,
                            "natural_key": interface.natural_key(), "production_id": str(interface.pk)}
                           for interface in interfaces],
        }

    @staticmethod
    def cable(cable: Cable, mirrored_devices: list[Device]) -> dict:
        """`expected` says what the sync should do: device components exist in VeritasBot only on mirrored
        devices, while circuit terminations are synced from production."""
        ends = [cable.termination_a, cable.termination_b]
        resolvable = [not isinstance(end, Interface) or end.device in mirrored_devices for end in ends]
        return {
            "production_id": str(cable.pk), "label": cable.label, "status": cable.status.name,
            "a": {"type": model_label(type(ends[0])), "natural_key": ends[0].natural_key()},
            "b": {"type": model_label(type(ends[1])), "natural_key": ends[1].natural_key()},
            "expected": "synced" if all(resolvable) else "pending",
        }


# ---------------------------------------------------------------------------------------------- --scale
class ScaleSeeder(Seeder):
    """About N more objects of the synced models, for benchmarks.

    About 5% of them are cables and contact associations on production devices this pass adds (with
    SCALE_DEVICE_INTERFACES interfaces each, in the plan devices' locations): the plan lists those devices as
    `scale_devices`, and seed_discovery.py mirrors them in VeritasBot under other UUIDs, so a sync at scale has
    to resolve these references into discovered (lookup) models. The devices and interfaces are extra: lookup
    models, not counted in N. The rest is spread evenly over the other synced models.

    It draws from a random stream of its own and runs after the discovery plan is built, so the other seeded
    objects and the plan (but for `scale_devices`, present only at --scale > 0) are the same at any --scale.
    bulk_create is used where the model's save() adds nothing; PowerFeed computes available_power and Cable
    creates its terminations and paths in save(), so those are saved one by one. Parents come from what
    exists, including objects created earlier in this pass.
    """

    REFERENCING_SHARE = 0.05  # cables plus contact associations, of N

    def __init__(self, seed: str, plan: dict | None = None) -> None:
        super().__init__(seed, "production-scale")
        self.number = 0
        self.plan = plan if plan is not None else {}
        self.scale_devices: list[Device] = []

    def run(self, total: int) -> None:
        referencing = round(total * self.REFERENCING_SHARE) if self.plan.get("devices") else 0
        cables, associations = referencing // 2, referencing - referencing // 2
        total -= referencing
        builders = [
            self.tenant_groups, self.tenants, self.contacts, self.teams, self.tags, self.locations,
            self.rack_groups, self.racks, self.power_panels, self.power_feeds, self.manufacturers,
            self.device_families, self.platforms, self.device_types, self.module_families, self.module_types,
            self.software_versions, self.providers, self.provider_networks, self.circuit_types, self.circuits,
            self.supported_data_rates, self.radio_profiles, self.wireless_networks,
        ]
        share, remainder = divmod(total, len(builders))
        for index, build in enumerate(builders):
            count = share + (1 if index < remainder else 0)
            if count:
                build(count)
        if referencing:
            self.devices(max(2, -(-2 * cables // SCALE_DEVICE_INTERFACES)))
            self.cables(cables)
            self.contact_associations(associations)

    def name(self, kind: str) -> str:
        """Globally unique names keep natural keys unambiguous even where Nautobot does not enforce it."""
        self.number += 1
        return f"Scale {kind} {self.number:06d}"

    def bulk(self, model, count: int, make) -> list:
        return self.bulk_create(model, [model(id=self.new_id(), **make()) for _ in range(count)])

    def existing(self, model, *fields) -> list:
        return list(model.objects.order_by(*fields, "pk"))

    # ------------------------------------------------------------------ organization
    def tenant_groups(self, count: int) -> None:
        pool = self.existing(TenantGroup, "name")
        groups = []
        for _ in range(count):
            group = TenantGroup(id=self.new_id(), name=self.name("Tenant Group"),
                                parent=self.maybe(pool))
            groups.append(group)
            pool.append(group)
        self.bulk_create(TenantGroup, groups)

    def tenants(self, count: int) -> None:
        groups = self.existing(TenantGroup, "name")
        self.bulk(Tenant, count, lambda: {"name": self.name("Tenant"), "tenant_group": self.maybe(groups, 0.8)})

    def contacts(self, count: int) -> None:
        self.bulk(Contact, count, lambda: {"name": self.name("Contact"), "phone": f"+1-555-{self.number:06d}",
                                           "email": f"contact{self.number}@example.com"})

    def teams(self, count: int) -> None:
        self.bulk(Team, count, lambda: {"name": self.name("Team"), "email": f"team{self.number}@example.com"})

    def tags(self, count: int) -> None:
        taggable = list(TaggableClassesQuery().as_queryset())
        tags = self.bulk(Tag, count, lambda: {"name": self.name("Tag"), "color": f"{self.rng.getrandbits(24):06x}"})
        through = Tag.content_types.through
        rows = [through(tag=tag, contenttype=ct) for tag in tags for ct in self.sample(taggable, 3)]
        through.objects.bulk_create(rows, batch_size=BULK_BATCH)

    # ------------------------------------------------------------------ locations, racks, power
    def locations(self, count: int) -> None:
        """New locations under existing ones, following the location type tree (and nestable types)."""
        by_type = defaultdict(list)
        for location in self.existing(Location, "name"):
            by_type[location.location_type_id].append(location)
        types = self.existing(LocationType, "name")
        statuses = list(Status.objects.get_for_model(Location).order_by("name")) or [
            self.status("Active", Location)]
        created = []
        for _ in range(count):
            location_type = self.pick_location_type(types, by_type)
            parents = by_type[location_type.parent_id] if location_type.parent_id else []
            if location_type.nestable:
                parents = parents + by_type[location_type.pk]
            parent = self.rng.choice(parents) if parents else None
            if location_type.parent_id is None and self.rng.random() < 0.5:
                parent = None  # a nestable root type may start a new tree
            location = Location(id=self.new_id(), name=self.name(location_type.name),
                                location_type=location_type, parent=parent, status=self.rng.choice(statuses))
            by_type[location_type.pk].append(location)
            created.append(location)
        self.bulk_create(Location, created)

    def pick_location_type(self, types: list, by_type: dict) -> LocationType:
        """A type whose parent type has locations to hang under (root types always qualify)."""
        return self.rng.choice([t for t in types if t.parent_id is None or by_type[t.parent_id]])

    def locations_for(self, model) -> list[Location]:
        return list(Location.objects.filter(location_type__content_types=content_type(model)).order_by("name", "pk"))

    def rack_groups(self, count: int) -> None:
        locations = self.locations_for(RackGroup)
        by_location = defaultdict(list)
        created = []
        for _ in range(count):
            location = self.rng.choice(locations)
            parent = self.maybe(by_location[location.pk])
            group = RackGroup(id=self.new_id(), name=self.name("Rack Group"), location=location, parent=parent)
            by_location[location.pk].append(group)
            created.append(group)
        self.bulk_create(RackGroup, created)

    def groups_by_location(self) -> dict:
        groups = defaultdict(list)
        for group in self.existing(RackGroup, "name"):
            groups[group.location_id].append(group)
        return groups

    def racks(self, count: int) -> None:
        locations = self.locations_for(Rack)
        groups = self.groups_by_location()
        statuses = list(Status.objects.get_for_model(Rack).order_by("name"))

        def make():
            location = self.rng.choice(locations)
            return {"name": self.name("Rack"), "location": location, "status": self.rng.choice(statuses),
                    "rack_group": self.maybe(groups[location.pk]), "u_height": self.rng.choice([42, 45, 48]),
                    "width": self.rng.choice(RackWidthChoices.values()), "serial": f"S{self.number:08d}"}

        self.bulk(Rack, count, make)

    def power_panels(self, count: int) -> None:
        locations = self.locations_for(PowerPanel)
        groups = self.groups_by_location()

        def make():
            location = self.rng.choice(locations)
            return {"name": self.name("Power Panel"), "location": location,
                    "rack_group": self.maybe(groups[location.pk]),
                    "panel_type": self.rng.choice(PowerPanelTypeChoices.values())}

        self.bulk(PowerPanel, count, make)

    def power_feeds(self, count: int) -> None:
        panels = self.existing(PowerPanel, "name")
        racks = defaultdict(list)
        for rack in self.existing(Rack, "name"):
            racks[rack.location_id].append(rack)
        statuses = list(Status.objects.get_for_model(PowerFeed).order_by("name"))
        for _ in range(count):
            panel = self.rng.choice(panels)
            feed = PowerFeed(id=self.new_id(), name=self.name("Feed"), power_panel=panel,
                             rack=self.maybe(racks[panel.location_id]), status=self.rng.choice(statuses),
                             voltage=self.rng.choice([120, 208, 230]), amperage=self.rng.choice([16, 20, 30, 32]),
                             phase=self.rng.choice(PowerFeedPhaseChoices.values()))
            feed.save()
        self.created[model_label(PowerFeed)] += count

    # ------------------------------------------------------------------ hardware catalog
    def manufacturers(self, count: int) -> None:
        self.bulk(Manufacturer, count, lambda: {"name": self.name("Manufacturer")})

    def device_families(self, count: int) -> None:
        self.bulk(DeviceFamily, count, lambda: {"name": self.name("Device Family")})

    def module_families(self, count: int) -> None:
        self.bulk(ModuleFamily, count, lambda: {"name": self.name("Module Family")})

    def platforms(self, count: int) -> None:
        manufacturers = self.existing(Manufacturer, "name")
        self.bulk(Platform, count, lambda: {"name": self.name("Platform"),
                                            "manufacturer": self.maybe(manufacturers, 0.8)})

    def device_types(self, count: int) -> None:
        manufacturers = self.existing(Manufacturer, "name")
        families = self.existing(DeviceFamily, "name")
        self.bulk(DeviceType, count, lambda: {"model": self.name("Device Model"),
                                              "manufacturer": self.rng.choice(manufacturers),
                                              "device_family": self.maybe(families),
                                              "u_height": self.rng.choice([1, 2, 4])})

    def module_types(self, count: int) -> None:
        manufacturers = self.existing(Manufacturer, "name")
        families = self.existing(ModuleFamily, "name")
        self.bulk(ModuleType, count, lambda: {"model": self.name("Module Model"),
                                              "manufacturer": self.rng.choice(manufacturers),
                                              "module_family": self.maybe(families)})

    def software_versions(self, count: int) -> None:
        platforms = self.existing(Platform, "name")
        statuses = list(Status.objects.get_for_model(SoftwareVersion).order_by("name"))
        self.bulk(SoftwareVersion, count, lambda: {"version": self.name("Version"),
                                                   "platform": self.rng.choice(platforms),
                                                   "status": self.rng.choice(statuses)})

    # ------------------------------------------------------------------ network services
    def providers(self, count: int) -> None:
        self.bulk(Provider, count, lambda: {"name": self.name("Provider"), "asn": 64512 + self.number % 1000})

    def provider_networks(self, count: int) -> None:
        providers = self.existing(Provider, "name")
        self.bulk(ProviderNetwork, count, lambda: {"name": self.name("Provider Network"),
                                                   "provider": self.rng.choice(providers)})

    def circuit_types(self, count: int) -> None:
        self.bulk(CircuitType, count, lambda: {"name": self.name("Circuit Type")})

    def circuits(self, count: int) -> None:
        providers = self.existing(Provider, "name")
        circuit_types = self.existing(CircuitType, "name")
        tenants = self.existing(Tenant, "name")
        statuses = list(Status.objects.get_for_model(Circuit).order_by("name"))
        self.bulk(Circuit, count, lambda: {"cid": self.name("Circuit"), "provider": self.rng.choice(providers),
                                           "circuit_type": self.rng.choice(circuit_types),
                                           "status": self.rng.choice(statuses),
                                           "tenant": self.maybe(tenants, 0.3)})

    # ------------------------------------------------------------------ references into discovered models
    def devices(self, count: int) -> None:
        """Production devices placed like the plan's mirrored devices (their locations, device types, roles and
        statuses), each with SCALE_DEVICE_INTERFACES interfaces; listed in the plan for seed_discovery.py."""
        models = [Device.objects.select_related("location", "device_type", "role", "status").get(
            pk=entry["production_id"]) for entry in self.plan["devices"]]
        interface_status = self.status("Active", Interface)
        devices, interfaces = [], []
        for number in range(1, count + 1):
            model = self.rng.choice(models)
            device = Device(id=self.new_id(), name=f"scale-device-{number:05d}", location=model.location,
                            device_type=model.device_type, role=model.role, status=model.status)
            devices.append(device)
            for port in range(1, SCALE_DEVICE_INTERFACES + 1):
                interfaces.append(Interface(id=self.new_id(), device=device, name=f"Ethernet1/{port}",
                                            type=InterfaceTypeChoices.TYPE_10GE_SFP_PLUS, status=interface_status))
        self.bulk_create(Device, devices)
        self.bulk_create(Interface, interfaces)
        self.scale_devices = devices
        by_device = defaultdict(list)
        for interface in interfaces:
            by_device[interface.device_id].append(interface)
        self.plan["scale_devices"] = [{
            "name": device.name, "location": device.location.natural_key(),
            "device_type": device.device_type.natural_key(), "role": device.role.name, "status": device.status.name,
            "natural_key": device.natural_key(), "production_id": str(device.pk),
            "interfaces": [{"name": interface.name, "type": interface.type, "status": interface_status.name,
                            "natural_key": interface.natural_key(),
                            "production_id": str(interface.pk)} for interface in by_device[device.pk]],
        } for device in devices]

    def cables(self, count: int) -> None:
        """Cables between interfaces of two different scale devices, each interface used once."""
        free = [interface for device in self.scale_devices
                for interface in Interface.objects.filter(device=device).order_by("_name")]
        self.rng.shuffle(free)
        statuses = list(Status.objects.get_for_model(Cable).order_by("name"))
        types = [CableTypeChoices.TYPE_CAT6, CableTypeChoices.TYPE_SMF_OS2, CableTypeChoices.TYPE_MMF_OM4]
        made = 0
        while made < count and len(free) >= 2:
            a = free.pop()
            b = next((i for i in reversed(free) if i.device_id != a.device_id), None)
            if b is None:
                break
            free.remove(b)
            self.number += 1
            cable = Cable(id=self.new_id(), termination_a=a, termination_b=b, status=self.rng.choice(statuses),
                          label=f"SCALE-CBL-{self.number:06d}", type=self.rng.choice(types),
                          length=self.rng.randint(1, 30), length_unit=CableLengthUnitChoices.UNIT_METER)
            cable.save()
            made += 1
        self.created[model_label(Cable)] += made

    def contact_associations(self, count: int) -> None:
        """Contacts and teams on the scale devices: (owner, device, role) combinations, each used once."""
        owners = [{"contact": contact} for contact in self.existing(Contact, "name")]
        owners += [{"team": team} for team in self.existing(Team, "name")]
        roles = list(Role.objects.get_for_model(ContactAssociation).order_by("name"))
        statuses = list(Status.objects.get_for_model(ContactAssociation).order_by("name"))
        device_type = content_type(Device)
        combinations = len(owners) * len(roles) * len(self.scale_devices)
        picked = sorted(self.rng.sample(range(combinations), min(count, combinations)))
        rows = []
        for index in picked:
            owner, rest = divmod(index, len(roles) * len(self.scale_devices))
            role, device = divmod(rest, len(self.scale_devices))
            rows.append(ContactAssociation(
                id=self.new_id(), associated_object_type=device_type,
                associated_object_id=self.scale_devices[device].pk, role=roles[role],
                status=self.rng.choice(statuses), **owners[owner]))
        self.bulk_create(ContactAssociation, rows)

    # ------------------------------------------------------------------ wireless
    def supported_data_rates(self, count: int) -> None:
        # generate_test_data's rates stay below 165,000 Kbps: these cannot collide with them.
        def make():
            self.number += 1
            return {"standard": self.rng.choice(SupportedDataRateStandardChoices.values()),
                    "rate": 200_000 + self.number, "mcs_index": self.rng.randint(0, 9)}

        self.bulk(SupportedDataRate, count, make)

    def radio_profiles(self, count: int) -> None:
        rates = self.existing(SupportedDataRate, "standard", "rate")
        profiles = self.bulk(RadioProfile, count, lambda: {
            "name": self.name("Radio Profile"),
            "regulatory_domain": self.rng.choice(RadioProfileRegulatoryDomainChoices.values()),
            "frequency": self.rng.choice(RadioProfileFrequencyChoices.values()),
            "channel_width": sorted(self.sample(RadioProfileChannelWidthChoices.values(), 2)),
            "allowed_channel_list": sorted(self.sample([1, 6, 11, 36, 40, 149], 3)),
        })
        through = RadioProfile.supported_data_rates.through
        rows = [through(radioprofile=profile, supporteddatarate=rate)
                for profile in profiles for rate in self.sample(rates, 2)]
        through.objects.bulk_create(rows, batch_size=BULK_BATCH)

    def wireless_networks(self, count: int) -> None:
        tenants = self.existing(Tenant, "name")
        self.bulk(WirelessNetwork, count, lambda: {
            "name": self.name("Wireless Network"), "ssid": f"corp-{self.number:06d}",
            "mode": self.rng.choice(WirelessNetworkModeChoices.values()),
            "authentication": self.rng.choice(WirelessNetworkAuthenticationChoices.values()),
            "tenant": self.maybe(tenants, 0.3),
        })


# ---------------------------------------------------------------------------------------------- main
def require_generated_database() -> None:
    if not Location.objects.exists() or not Device.objects.exists():
        raise SystemExit("seed_production.py: the database holds no locations or devices; "
                         "run `nautobot-server generate_test_data --seed S --flush --no-input` on it first")
    if RackGroup.objects.exists() or CustomField.objects.exists():
        raise SystemExit("seed_production.py: the database already holds rack groups or custom fields "
                         "(seeded before?); start again from a fresh generate_test_data database")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", required=True)
    parser.add_argument("--scale", type=int, default=0, help="about this many extra objects over the synced models")
    parser.add_argument("--discovery-plan", required=True, type=Path, help="where to write the plan (JSON)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Nautobot caches per model (custom fields, content types), not per database, and every seeding process of the
    # stack shares one Redis database: entries left by a run on another database would be wrong here.
    cache.clear()
    require_generated_database()
    seeder = ProductionSeeder(args.seed)
    with transaction.atomic():
        seeder.run()
        plan = DiscoveryPlan(seeder).build()
        scale = ScaleSeeder(args.seed, plan)  # adds the plan's `scale_devices` when it creates any
        scale.run(args.scale)
        provision_custom_field_defaults()
    seeder.created.update(scale.created)
    args.discovery_plan.parent.mkdir(parents=True, exist_ok=True)
    args.discovery_plan.write_text(json.dumps(plan, indent=2) + "\n")
    seeder.print_counts(f"seed_production.py --seed {args.seed} --scale {args.scale}")
    print(f"discovery plan: {len(plan['devices'])} devices, {len(plan['racks'])} racks, "
          f"{len(plan['locations'])} locations, {len(plan.get('scale_devices', []))} scale devices "
          f"-> {args.discovery_plan}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
