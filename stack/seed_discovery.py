"""Simulated discovery state for the local stack's VeritasBot: what discovery jobs leave before the first sync.

Run with the Nautobot venv's python and the environment of `Stack.nautobot_env(db)` on a freshly migrated
database, with the plan seed_production.py wrote for the same seed:

    seed_discovery.py --seed S --discovery-plan PATH [--discovery-scale D]

From the plan it recreates some production objects (manufacturers, platforms, tenants, location types,
locations, rack groups, racks, device types, roles, devices and their interfaces) with the same natural keys
but other UUIDs, as if discovery jobs had created them first, so the sync has to adopt them. It adds the
discovery tags, tags the recreated devices and one rack as discovered, places a few discovered-only devices
in the recreated racks, and adds virtual machines in clusters tagged by the vSphere and OpenShift jobs.
The production devices a --scale run added for its cables and contact associations (the plan's
`scale_devices`) are recreated the same way, interfaces included.

`--discovery-scale D` (default 0: nothing more) adds D discovered devices with 50 interfaces each, in the
recreated racks and in discovery-only locations and racks, D/2 virtual machines with two interfaces each in
vSphere and OpenShift clusters, and IP addresses (two per device, one per VM) in one discovered prefix, all
carrying the discovery tags. These draw from random streams of their own and are written with bulk_create.

Deterministic for a given seed (UUIDs and choices come from random.Random); it never reuses a production UUID.
Everything is written in one transaction and every recreated object's natural key is checked against the plan.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import nautobot

nautobot.setup()

from django.apps import apps  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import transaction  # noqa: E402
from nautobot.dcim.choices import InterfaceTypeChoices  # noqa: E402
from nautobot.dcim.models import (  # noqa: E402
    Device,
    DeviceType,
    Interface,
    Location,
    LocationType,
    Manufacturer,
    Platform,
    Rack,
    RackGroup,
)
from nautobot.extras.models import Tag, TaggedItem  # noqa: E402
from nautobot.ipam.models import VLAN, IPAddress, IPAddressToInterface, Namespace, Prefix  # noqa: E402
from nautobot.tenancy.models import Tenant  # noqa: E402
from nautobot.virtualization.models import Cluster, ClusterType, VirtualMachine, VMInterface  # noqa: E402

# The production seed's helpers, so that both seeds create, count and allow content types the same way.
from seed_production import (  # noqa: E402
    PLAN_FORMAT,
    SCALE_DEVICE_INTERFACES,
    Seeder,
    allow_content_types,
    content_type,
    model_label,
)

NETWORK_DISCOVERY = "SSoT Synced from Network Discovery"
VSPHERE = "SSoT Synced from vSphere"
OPENSHIFT = "SSoT Synced from OpenShift"
DISCOVERY_TAGS = {NETWORK_DISCOVERY: "2196f3", VSPHERE: "4caf50", OPENSHIFT: "f44336"}
TAGGED_MODELS = (Device, Interface, VirtualMachine, VMInterface, Cluster, Location, Rack, IPAddress, Prefix, VLAN)
# Clusters and their VMs: (cluster type, cluster name, tag, VM names); the vSphere cluster sits in a plan location.
CLUSTERS = (
    ("VMware vSphere", "vsphere-cluster-01", VSPHERE, ("vcenter-01", "jump-host-01", "netbox-legacy-01")),
    ("OpenShift", "openshift-prod", OPENSHIFT, ("ocp-master-01", "ocp-worker-01", "ocp-worker-02")),
)


# --discovery-scale: discovery-only locations (each with this many racks) per this many devices, and the prefix
# (not one production or generate_test_data uses) the discovered addresses sit in.
DEVICES_PER_DISCOVERED_SITE = 250
RACKS_PER_DISCOVERED_SITE = 4
DISCOVERED_PREFIX = "100.64.0.0/10"
DEVICE_ADDRESSES = (("Loopback0", 0x0000_0000), ("Management1", 0x0020_0000))  # offsets from 100.64.0.0
VM_ADDRESS_OFFSET = 0x0030_0000


def key(natural_key: list) -> tuple:
    """Plan references are natural-key lists; as tuples they index the objects created here."""
    return tuple(natural_key)


def production_ids(node) -> set[str]:
    """Every `production_id` in the plan, nested entries (interfaces) included."""
    if isinstance(node, dict):
        own = {node["production_id"]} if "production_id" in node else set()
        return own.union(*(production_ids(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(production_ids(value) for value in node))
    return set()


class Stream(Seeder):
    """A random stream of its own (so the other objects are the same whatever it draws), never a production UUID."""

    def __init__(self, seed: str, purpose: str, avoid: set[str]) -> None:
        super().__init__(seed, purpose)
        self.avoid = avoid

    def new_id(self) -> uuid.UUID:
        while True:
            new = super().new_id()
            if str(new) not in self.avoid:
                return new


class DiscoverySeeder(Seeder):
    def __init__(self, seed: str, plan: dict, discovery_scale: int = 0) -> None:
        super().__init__(seed, "discovery")
        self.seed = seed
        self.discovery_scale = discovery_scale
        self.plan = plan
        self.production_ids = production_ids(plan)
        self.tags: dict[str, Tag] = {}
        self.location_types: dict[str, LocationType] = {}
        self.locations: dict[tuple, Location] = {}
        self.rack_groups: dict[tuple, RackGroup] = {}
        self.racks: list[Rack] = []
        self.device_types: dict[tuple, DeviceType] = {}
        self.mirrored: list[tuple] = []  # (object, plan entry) pairs whose natural keys must agree

    def new_id(self) -> uuid.UUID:
        """Never a production UUID: these objects must match production by natural key only."""
        while True:
            new = super().new_id()
            if str(new) not in self.production_ids:
                return new

    def mirror(self, model, entry: dict, /, **fields):
        obj = self.create(model, **fields)
        self.mirrored.append((obj, entry))
        return obj

    def run(self) -> None:
        self.seed_tags()
        self.seed_statuses_and_roles()
        self.seed_organization()
        self.seed_locations()
        self.seed_racks()
        self.seed_device_types()
        self.seed_mirrored_devices()
        self.seed_discovered_only_devices()
        self.seed_virtual_machines()
        self.seed_scale_mirrors()
        if self.discovery_scale:
            self.seed_discovery_scale(self.discovery_scale)
        self.verify_natural_keys()

    # ------------------------------------------------------------------ metadata
    def seed_tags(self) -> None:
        for name, color in DISCOVERY_TAGS.items():
            tag = self.create(Tag, name=name, color=color, description="Created by a discovery job")
            allow_content_types(tag, *TAGGED_MODELS)
            self.tags[name] = tag

    def seed_statuses_and_roles(self) -> None:
        for entry in self.plan["statuses"]:
            self.status(entry["name"], *map(apps.get_model, entry["content_types"]))
        for entry in self.plan["roles"]:
            self.role(entry["name"], *map(apps.get_model, entry["content_types"]))

    def seed_organization(self) -> None:
        for entry in self.plan["manufacturers"]:
            self.mirror(Manufacturer, entry, name=entry["name"])
        for entry in self.plan["platforms"]:
            manufacturer = Manufacturer.objects.get(name=entry["manufacturer"]) if entry["manufacturer"] else None
            self.mirror(Platform, entry, name=entry["name"], manufacturer=manufacturer,
                        network_driver=entry["network_driver"])
        for entry in self.plan["tenants"]:
            self.mirror(Tenant, entry, name=entry["name"], description="Discovered from the CMDB")

    # ------------------------------------------------------------------ locations and racks
    def seed_locations(self) -> None:
        """Parents first, as the plan lists them. Content types are added where objects get placed."""
        for entry in self.plan["location_types"]:
            self.location_types[entry["name"]] = self.mirror(
                LocationType, entry, name=entry["name"], nestable=entry["nestable"],
                parent=self.location_types[entry["parent"]] if entry["parent"] else None)
        for entry in self.plan["locations"]:
            self.locations[key(entry["natural_key"])] = self.mirror(
                Location, entry, name=entry["name"], location_type=self.location_types[entry["location_type"]],
                parent=self.location(entry["parent"]), status=self.status(entry["status"], Location))

    def location(self, natural_key: list | None, *models) -> Location | None:
        """A recreated location (None for None), its type allowed to hold `models`."""
        location = self.locations[key(natural_key)] if natural_key else None
        if models:
            allow_content_types(location.location_type, *models)
        return location

    def rack_group(self, natural_key: list | None) -> RackGroup | None:
        return self.rack_groups[key(natural_key)] if natural_key else None

    def seed_racks(self) -> None:
        for entry in self.plan["rack_groups"]:
            self.rack_groups[key(entry["natural_key"])] = self.mirror(
                RackGroup, entry, name=entry["name"], location=self.location(entry["location"], RackGroup),
                parent=self.rack_group(entry["parent"]))
        for entry in self.plan["racks"]:
            # Discovery knows name, place and height; asset tag, serial, role and tenant stay production's.
            rack = self.mirror(Rack, entry, name=entry["name"], u_height=entry["u_height"],
                               location=self.location(entry["location"], Rack, Device),
                               rack_group=self.rack_group(entry["rack_group"]),
                               status=self.status(entry["status"], Rack))
            self.racks.append(rack)
        # One rack carries a discovery tag itself; the others are discovery-touched through their devices.
        self.racks[0].tags.add(self.tags[NETWORK_DISCOVERY])

    # ------------------------------------------------------------------ devices
    def seed_device_types(self) -> None:
        for entry in self.plan["device_types"]:
            self.device_types[key(entry["natural_key"])] = self.mirror(
                DeviceType, entry, manufacturer=Manufacturer.objects.get(name=entry["manufacturer"]),
                model=entry["model"], u_height=entry["u_height"], subdevice_role=entry["subdevice_role"])

    def seed_mirrored_devices(self) -> None:
        """The production devices that are cable endpoints, with their interfaces under the same names."""
        for entry in self.plan["devices"]:
            device = self.mirror(
                Device, entry, name=entry["name"], device_type=self.device_types[key(entry["device_type"])],
                location=self.location(entry["location"], Device),
                tenant=Tenant.objects.get(name=entry["tenant"]) if entry["tenant"] else None,
                platform=Platform.objects.get(name=entry["platform"]) if entry["platform"] else None,
                role=self.role(entry["role"], Device), status=self.status(entry["status"], Device),
                serial=self.serial())
            device.tags.add(self.tags[NETWORK_DISCOVERY])
            for interface_entry in entry["interfaces"]:
                interface = self.mirror(Interface, interface_entry, device=device, name=interface_entry["name"],
                                        type=interface_entry["type"],
                                        status=self.status(interface_entry["status"], Interface))
                interface.tags.add(self.tags[NETWORK_DISCOVERY])

    def seed_discovered_only_devices(self) -> None:
        """Devices production does not know, one in each recreated rack."""
        role = self.role(self.plan["roles"][0]["name"], Device)
        status = self.status("Active", Device, Interface)
        for number, rack in enumerate(self.racks, start=1):
            device = self.create(Device, name=f"discovered-leaf-{number:02d}", rack=rack, location=rack.location,
                                 device_type=self.pick(self.device_types.values()), role=role, status=status,
                                 serial=self.serial())
            device.tags.add(self.tags[NETWORK_DISCOVERY])
            for port in (1, 2):
                interface = self.create(Interface, device=device, name=f"Ethernet1/{port}", status=status,
                                        type=InterfaceTypeChoices.TYPE_10GE_SFP_PLUS)
                interface.tags.add(self.tags[NETWORK_DISCOVERY])

    def serial(self) -> str:
        return f"FDO{self.rng.getrandbits(32):08X}"

    def seed_virtual_machines(self) -> None:
        status = self.status("Active", VirtualMachine, VMInterface)
        tenants = list(Tenant.objects.order_by("name"))
        location = self.racks[0].location
        allow_content_types(location.location_type, Cluster)
        for type_name, cluster_name, tag_name, vm_names in CLUSTERS:
            cluster_type = self.create(ClusterType, name=type_name)
            cluster = self.create(Cluster, name=cluster_name, cluster_type=cluster_type,
                                  location=location if tag_name == VSPHERE else None)
            cluster.tags.add(self.tags[tag_name])
            for vm_name in vm_names:
                vm = self.create(VirtualMachine, name=vm_name, cluster=cluster, status=status,
                                 tenant=self.maybe(tenants), vcpus=self.pick([2, 4, 8]),
                                 memory=self.pick([4096, 8192, 16384]), disk=self.pick([40, 80, 200]))
                vm.tags.add(self.tags[tag_name])
                interface = self.create(VMInterface, virtual_machine=vm, name="eth0", status=status)
                interface.tags.add(self.tags[tag_name])

    # ------------------------------------------------------------------ --scale: the mirrored scale devices
    def stream(self, purpose: str) -> Stream:
        return Stream(self.seed, purpose, self.production_ids)

    def merge_counts(self, stream: Stream) -> None:
        self.created.update(stream.created)

    def tag_rows(self, stream: Stream, tag_name: str, objects: list) -> None:
        """Tags for bulk-created objects (tags.add() one by one would take hours at scale)."""
        tag = self.tags[tag_name]
        stream.bulk_create(TaggedItem, [TaggedItem(id=stream.new_id(), content_type=content_type(type(obj)),
                                                   object_id=obj.pk, tag=tag) for obj in objects])

    def seed_scale_mirrors(self) -> None:
        """The plan's `scale_devices` (production devices of a --scale run that carry its cables and contact
        associations), with their interfaces, as discovery found them."""
        entries = self.plan.get("scale_devices") or []
        if not entries:
            return
        stream = self.stream("discovery-scale-mirrors")
        locations, roles, statuses = {}, {}, {}
        devices, interfaces = [], []
        for entry in entries:
            where = key(entry["location"])
            if where not in locations:
                locations[where] = self.location(entry["location"], Device)
            if entry["role"] not in roles:
                roles[entry["role"]] = self.role(entry["role"], Device)
            if ("device", entry["status"]) not in statuses:
                statuses["device", entry["status"]] = self.status(entry["status"], Device)
            device = Device(id=stream.new_id(), name=entry["name"], location=locations[where],
                            device_type=self.device_types[key(entry["device_type"])], role=roles[entry["role"]],
                            status=statuses["device", entry["status"]], serial=f"FDO{stream.rng.getrandbits(32):08X}")
            devices.append(device)
            self.mirrored.append((device, entry))
            for interface_entry in entry["interfaces"]:
                status_key = ("interface", interface_entry["status"])
                if status_key not in statuses:
                    statuses[status_key] = self.status(interface_entry["status"], Interface)
                interface = Interface(id=stream.new_id(), device=device, name=interface_entry["name"],
                                      type=interface_entry["type"], status=statuses[status_key])
                interfaces.append(interface)
                self.mirrored.append((interface, interface_entry))
        stream.bulk_create(Device, devices)
        stream.bulk_create(Interface, interfaces)
        self.tag_rows(stream, NETWORK_DISCOVERY, [*devices, *interfaces])
        self.merge_counts(stream)

    # ------------------------------------------------------------------ --discovery-scale
    def seed_discovery_scale(self, count: int) -> None:
        """`count` discovered devices (SCALE_DEVICE_INTERFACES interfaces each), count // 2 VMs, their addresses."""
        stream = self.stream(f"discovery-scale-{count}")
        holders = self.discovered_holders(stream, count)
        devices, interfaces = self.scale_devices(stream, count, holders)
        vm_interfaces = self.scale_virtual_machines(stream, count // 2, holders)
        self.scale_addresses(stream, interfaces, vm_interfaces)
        self.merge_counts(stream)

    def discovered_holders(self, stream: Stream, count: int) -> list[tuple]:
        """(location, rack) pairs: the recreated racks, and discovery-only locations and racks (with rack None
        for devices placed in the location only). The discovery-only locations have the type of the recreated
        racks' first location and sit beside it, under its parent."""
        sibling = self.racks[0].location
        tag = self.tags[NETWORK_DISCOVERY]
        active = stream.status("Active", Location, Rack)
        allow_content_types(sibling.location_type, Rack, Device, Cluster)
        holders = [(rack.location, rack) for rack in self.racks]
        for site in range(1, -(-count // DEVICES_PER_DISCOVERED_SITE) + 1):
            location = stream.create(Location, name=f"Discovered Site {site:03d}", parent=sibling.parent,
                                     location_type=sibling.location_type, status=active,
                                     description="Found by network discovery")
            location.tags.add(tag)
            holders.append((location, None))
            for number in range(1, RACKS_PER_DISCOVERED_SITE + 1):
                rack = stream.create(Rack, name=f"DISC-{site:03d}-R{number:02d}", location=location, status=active,
                                     u_height=42)
                rack.tags.add(tag)
                holders.append((location, rack))
        return holders

    def scale_devices(self, stream: Stream, count: int, holders: list[tuple]) -> tuple[list, list]:
        """A third of the devices in the recreated racks, the others in the discovery-only holders."""
        role = self.role(self.plan["roles"][0]["name"], Device)
        status = self.status("Active", Device, Interface)
        device_types = sorted(self.device_types.values(), key=lambda t: (t.manufacturer.name, t.model))
        recreated, discovery_only = holders[:len(self.racks)], holders[len(self.racks):]
        ports = [(f"Ethernet1/{n}", InterfaceTypeChoices.TYPE_10GE_SFP_PLUS)
                 for n in range(1, SCALE_DEVICE_INTERFACES - 1)]
        ports += [("Management1", InterfaceTypeChoices.TYPE_1GE_FIXED), ("Loopback0", InterfaceTypeChoices.TYPE_VIRTUAL)]
        devices, interfaces = [], []
        for number in range(1, count + 1):
            location, rack = stream.rng.choice(recreated if stream.rng.random() < 1 / 3 else discovery_only)
            device = Device(id=stream.new_id(), name=f"discovered-node-{number:05d}", location=location, rack=rack,
                            device_type=stream.rng.choice(device_types), role=role, status=status,
                            serial=f"FDO{stream.rng.getrandbits(32):08X}")
            devices.append(device)
            interfaces += [Interface(id=stream.new_id(), device=device, name=name, type=kind, status=status)
                           for name, kind in ports]
        stream.bulk_create(Device, devices)
        stream.bulk_create(Interface, interfaces)
        self.tag_rows(stream, NETWORK_DISCOVERY, [*devices, *interfaces])
        return devices, interfaces

    def scale_virtual_machines(self, stream: Stream, count: int, holders: list[tuple]) -> list:
        """vSphere clusters (one per 500 devices, in the holders' locations) and OpenShift clusters (one per
        1000, no location), two thirds of the VMs in the vSphere ones; two interfaces per VM."""
        status = self.status("Active", VirtualMachine, VMInterface)
        tenants = list(Tenant.objects.order_by("name"))
        locations = list({location.pk: location for location, _rack in holders}.values())
        for location in locations:
            allow_content_types(location.location_type, Cluster)
        clusters = {VSPHERE: [], OPENSHIFT: []}
        for tag_name, type_name, prefix, per in ((VSPHERE, "VMware vSphere", "vsphere-scale", 250),
                                                 (OPENSHIFT, "OpenShift", "openshift-scale", 500)):
            cluster_type = ClusterType.objects.get(name=type_name)
            for number in range(1, max(1, count // per) + 1):
                cluster = stream.create(Cluster, name=f"{prefix}-{number:02d}", cluster_type=cluster_type,
                                        location=locations[(number - 1) % len(locations)] if tag_name == VSPHERE
                                        else None)
                cluster.tags.add(self.tags[tag_name])
                clusters[tag_name].append(cluster)
        machines, interfaces = {VSPHERE: [], OPENSHIFT: []}, {VSPHERE: [], OPENSHIFT: []}
        for number in range(1, count + 1):
            tag_name = VSPHERE if stream.rng.random() < 2 / 3 else OPENSHIFT
            vm = VirtualMachine(id=stream.new_id(), name=f"discovered-vm-{number:05d}", status=status,
                                cluster=stream.rng.choice(clusters[tag_name]), tenant=stream.maybe(tenants),
                                vcpus=stream.pick([2, 4, 8]), memory=stream.pick([4096, 8192, 16384]),
                                disk=stream.pick([40, 80, 200]))
            machines[tag_name].append(vm)
            interfaces[tag_name] += [VMInterface(id=stream.new_id(), virtual_machine=vm, name=name, status=status)
                                     for name in ("eth0", "eth1")]
        for tag_name in (VSPHERE, OPENSHIFT):
            stream.bulk_create(VirtualMachine, machines[tag_name])
            stream.bulk_create(VMInterface, interfaces[tag_name])
            self.tag_rows(stream, tag_name, [*machines[tag_name], *interfaces[tag_name]])
        return [(tag_name, interface) for tag_name in (VSPHERE, OPENSHIFT) for interface in interfaces[tag_name]]

    def scale_addresses(self, stream: Stream, interfaces: list, vm_interfaces: list) -> None:
        """/32s in one discovered prefix: each device's Loopback0 and Management1, each VM's eth0."""
        status = self.status("Active", Prefix, IPAddress)
        prefix = stream.create(Prefix, prefix=DISCOVERED_PREFIX, namespace=Namespace.objects.get(name="Global"),
                               status=status, type="network", description="Discovered addresses")
        prefix.tags.add(self.tags[NETWORK_DISCOVERY])
        base = int(ipaddress.IPv4Network(DISCOVERED_PREFIX).network_address)
        addresses, assignments, tagged = [], [], defaultdict(list)
        offsets = dict(DEVICE_ADDRESSES)
        numbering = {}

        def add(offset: int, number: int, tag_name: str, dns_name: str, **assigned) -> None:
            address = IPAddress(id=stream.new_id(), host=str(ipaddress.IPv4Address(base + offset + number)),
                                mask_length=32, ip_version=4, parent=prefix, status=status, dns_name=dns_name)
            addresses.append(address)
            assignments.append(IPAddressToInterface(id=stream.new_id(), ip_address=address, **assigned))
            tagged[tag_name].append(address)

        for interface in interfaces:
            if interface.name in offsets:
                number = numbering.setdefault(interface.device_id, len(numbering) + 1)
                add(offsets[interface.name], number, NETWORK_DISCOVERY,
                    f"{interface.device.name}-{interface.name.lower()}.discovered.example.net", interface=interface)
        eth0 = [(tag_name, interface) for tag_name, interface in vm_interfaces if interface.name == "eth0"]
        for number, (tag_name, interface) in enumerate(eth0, start=1):
            add(VM_ADDRESS_OFFSET, number, tag_name, f"{interface.virtual_machine.name}.discovered.example.net",
                vm_interface=interface)
        stream.bulk_create(IPAddress, addresses)
        stream.bulk_create(IPAddressToInterface, assignments)
        for tag_name, objects in tagged.items():
            self.tag_rows(stream, tag_name, objects)

    # ------------------------------------------------------------------ check
    def verify_natural_keys(self) -> None:
        wrong = [f"{obj._meta.label} {obj}: {list(obj.natural_key())} != plan {entry['natural_key']}"
                 for obj, entry in self.mirrored if list(obj.natural_key()) != entry["natural_key"]]
        if wrong:
            raise SystemExit("seed_discovery.py: natural keys differ from production's:\n  " + "\n  ".join(wrong))


def read_plan(path: Path) -> dict:
    if not path.exists():
        raise SystemExit(f"seed_discovery.py: no discovery plan at {path}; run seed_production.py first")
    plan = json.loads(path.read_text())
    if plan.get("format") != PLAN_FORMAT:
        raise SystemExit(f"seed_discovery.py: {path} has plan format {plan.get('format')}, expected {PLAN_FORMAT}")
    return plan


def require_fresh_database() -> None:
    if Device.objects.exists() or Tag.objects.filter(name__in=DISCOVERY_TAGS).exists():
        raise SystemExit("seed_discovery.py: the database already holds devices or discovery tags; "
                         "it expects a freshly migrated database")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", required=True)
    parser.add_argument("--discovery-plan", required=True, type=Path, help="written by seed_production.py")
    parser.add_argument("--discovery-scale", type=int, default=0,
                        help="this many more discovered devices (50 interfaces each), half as many VMs, addresses")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = read_plan(args.discovery_plan)
    # Nautobot caches per model, not per database, and the stack's seeding processes share one Redis database:
    # custom fields cached by the production seed would otherwise be applied to these objects.
    cache.clear()
    require_fresh_database()
    seeder = DiscoverySeeder(args.seed, plan, args.discovery_scale)
    with transaction.atomic():
        seeder.run()
    seeder.print_counts(f"seed_discovery.py --seed {args.seed} --discovery-scale {args.discovery_scale}")
    print(f"natural keys of {len(seeder.mirrored)} recreated objects match production's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
