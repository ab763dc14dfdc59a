"""What Nova's scheduler asks of a host for one instance, from its flavor and image, by Nova's rules.

Placement's allocation says what an instance *holds*, but not which traits
its host had to have, nor whether the guest is NUMA-placed: those follow
from the flavor's extra specs and the image's properties, by the rules of
``ResourceRequest.from_request_spec`` (nova/scheduler/utils.py) and the
``nova.virt.hardware`` helpers it calls (``numa_get_constraints`` for the
NUMA topology). This module is those rules, for nova 34 (2025.1), and
nothing else: ``tests/test_nova_request.py`` runs Nova's own code on
hundreds of flavor/image combinations and compares.

Nova's API refuses flavor and image combinations its helpers reject
(conflicting policies, bad masks, hugepages asked for by the image alone),
so no instance carries one and the rules below do not repeat those checks.
What the scheduler adds outside the flavor and image is not here: port
resource requests (QoS bandwidth, in the allocation anyway), accelerator
device profiles, and the request filters an operator turns on in
``[scheduler]`` (image type, isolated aggregates, image-metadata traits).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from attrs import frozen

from kronos.core.model import RESOURCE_ALIASES, STANDARD_RESOURCE_CLASSES

#: ``resources[$S]:CLASS`` and ``trait[$S]:NAME`` extra specs (Nova's ``XS_KEYPAT``)
_GROUPED = re.compile(r"^(resources|trait)([a-zA-Z0-9_-]{1,64})?:(.*)$")
#: the explicit CPU requests that make a guest pinned or not (``_get_vcpu_pcpu_resources``)
_EXPLICIT_CPU = re.compile(r"resources([1-9][0-9]*)?:(VCPU|PCPU)")
_STANDARD = frozenset((*RESOURCE_ALIASES, *STANDARD_RESOURCE_CLASSES))
_TRUE = frozenset(("1", "t", "true", "on", "y", "yes"))  # oslo's bool_from_string
_MEM_ENCRYPTION_TRAITS = {
    "amd-sev": "HW_CPU_X86_AMD_SEV",
    "amd-sev-es": "HW_CPU_X86_AMD_SEV_ES",
    "amd-sev-snp": "HW_CPU_X86_AMD_SEV_SNP",
    "intel-tdx": "HW_CPU_X86_INTEL_TDX",
}
_THREAD_TRAIT = {"isolate": "forbidden", "require": "required"}
_MAXPHYSADDR_TRAITS = {
    "passthrough": "COMPUTE_ADDRESS_SPACE_PASSTHROUGH",
    "emulate": "COMPUTE_ADDRESS_SPACE_EMULATED",
}


@frozen
class Request:
    """One instance's request: every request group merged, as the host as a whole must satisfy it."""

    #: Placement resource class → amount (zero amounts dropped, as Nova drops them)
    resources: dict[str, int]
    required: frozenset[str]
    forbidden: frozenset[str]
    #: the guest's NUMA cells; None when it has no NUMA topology (it floats over the host)
    numa_nodes: int | None


def request(
    vcpus: int, memory_mb: int, disk_gb: int, extra_specs: Mapping[str, str], image: Mapping[str, str]
) -> Request:
    """Nova's request for an instance of this flavor (``disk_gb`` already as Placement counts it:
    root disk unless booted from volume, plus ephemeral, plus swap rounded up to GiB) and image
    properties (empty when booted from volume or the image is gone)."""
    specs = {str(k): str(v) for k, v in extra_specs.items()}
    props = {str(k): str(v) for k, v in image.items()}
    groups: dict[str | None, dict[str, int]] = {}
    required: set[str] = set()
    forbidden: set[str] = set()

    def add(rclass: str, amount: object, group: str | None = None) -> None:
        """``RequestGroup.add_resource``: unknown classes and bad amounts are skipped, as Nova does."""
        if not (rclass.startswith("CUSTOM_") or rclass in _STANDARD):
            return
        try:
            n = int(str(amount))
        except ValueError:
            return
        if n >= 0:
            groups.setdefault(group, {})[rclass] = n

    def trait(name: str, kind: str) -> None:
        (required if kind == "required" else forbidden if kind == "forbidden" else set()).add(name)

    for key, value in specs.items():
        m = _GROUPED.match(key)
        if m:
            prefix, suffix, name = m.groups()
            if prefix == "resources":
                add(name, value, suffix)
            else:
                trait(name, value)
    for key, value in props.items():  # ImageMetaProps.traits_required: unsuffixed, required only
        if key.startswith("trait:") and value == "required":
            trait(key[len("trait:") :], "required")

    policy = _cpu_policy(specs, props)
    emulator_isolated = specs.get("hw:emulator_threads_policy") == "isolate"
    if policy in ("dedicated", "mixed"):
        dedicated = vcpus if policy == "dedicated" else len(_dedicated_mask(specs, props, vcpus))
        if policy == "mixed":
            add("VCPU", vcpus - dedicated)
        add("PCPU", dedicated + emulator_isolated)
    if kind := _THREAD_TRAIT.get(_flavor_first("cpu_thread_policy", specs, props) or ""):
        trait("HW_CPU_HYPERTHREADING", kind)

    merged = _merged(groups)
    if "VCPU" not in merged and "PCPU" not in merged:
        add("VCPU", vcpus)
    if "MEMORY_MB" not in merged:
        add("MEMORY_MB", memory_mb)
    if "DISK_GB" not in merged and disk_gb:
        add("DISK_GB", disk_gb)

    if _mem_encryption(specs, props):
        add("MEM_ENCRYPTION_CONTEXT", 1)
        model = props.get("hw_mem_encryption_model") or specs.get("hw:mem_encryption_model") or "amd-sev"
        trait(_MEM_ENCRYPTION_TRAITS.get(model, _MEM_ENCRYPTION_TRAITS["amd-sev"]), "required")
    pmem = _vpmems(specs)
    namespaces = [
        "CUSTOM_" + re.sub("[^0-9A-Za-z]+", "_", "PMEM_NAMESPACE_" + label).upper() for label in pmem
    ]
    for rclass in dict.fromkeys(namespaces):
        add(rclass, namespaces.count(rclass))
    if version := _flavor_first("tpm_version", specs, props):
        model = _flavor_first("tpm_model", specs, props) or "tpm-tis"
        trait("COMPUTE_SECURITY_TPM_CRB" if model == "tpm-crb" else "COMPUTE_SECURITY_TPM_TIS", "required")
        trait("COMPUTE_SECURITY_TPM_2_0" if version == "2.0" else "COMPUTE_SECURITY_TPM_1_2", "required")
    if _flavor_first("pci_numa_affinity_policy", specs, props) == "socket":
        trait("COMPUTE_SOCKET_PCI_NUMA_AFFINITY", "required")
    if (specs.get("os:secure_boot") or props.get("os_secure_boot")) == "required":
        trait("COMPUTE_SECURITY_UEFI_SECURE_BOOT", "required")
    if mode := _MAXPHYSADDR_TRAITS.get(_flavor_first("maxphysaddr_mode", specs, props) or ""):
        trait(mode, "required")
    stateless = props.get("hw_firmware_stateless")
    if stateless is not None and props.get("hw_firmware_type") == "uefi" and stateless.lower() in _TRUE:
        trait("COMPUTE_SECURITY_STATELESS_FIRMWARE", "required")

    resources = {rc: n for rc, n in _merged(groups).items() if n}
    return Request(
        resources, frozenset(required), frozenset(forbidden), _numa_nodes(specs, props, policy, pmem)
    )


def _merged(groups: Mapping[str | None, Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for group in groups.values():
        for rclass, n in group.items():
            out[rclass] = out.get(rclass, 0) + n
    return out


def _flavor_first(key: str, specs: Mapping[str, str], props: Mapping[str, str]) -> str | None:
    """``hw:KEY`` from the flavor, else ``hw_KEY`` from the image (Nova refuses a conflict)."""
    return specs.get(f"hw:{key}") or props.get(f"hw_{key}") or None


def _cpu_policy(specs: Mapping[str, str], props: Mapping[str, str]) -> str | None:
    """``get_cpu_policy_constraint``: the flavor's policy wins; the image's where the flavor has none."""
    policy = specs.get("hw:cpu_policy") or props.get("hw_cpu_policy")
    return policy if policy in ("dedicated", "mixed", "shared") else None


def _dedicated_mask(specs: Mapping[str, str], props: Mapping[str, str], vcpus: int) -> set[int]:
    """A mixed guest's pinned vCPUs: ``hw:cpu_dedicated_mask``, else its realtime mask."""
    mask = specs.get("hw:cpu_dedicated_mask")
    if not mask and specs.get("hw:cpu_realtime", "").lower() in _TRUE:
        mask = props.get("hw_cpu_realtime_mask") or specs.get("hw:cpu_realtime_mask")
        if not mask:
            return set(range(vcpus))
    if not mask:
        return set()
    return _cpu_spec(f"0-{vcpus - 1},{mask}" if mask.strip().startswith("^") else mask)


def _cpu_spec(spec: str) -> set[int]:
    """``parse_cpu_spec``: ``0-3,^2,6`` → {0, 1, 3, 6}."""
    take: set[int] = set()
    drop: set[int] = set()
    for rule in (r.strip() for r in spec.split(",")):
        if not rule:
            continue
        into = drop if rule.startswith("^") else take
        first, _, last = rule.lstrip("^").partition("-")
        start, end = _int(first, -1), _int(last or first, -1)
        if 0 <= start <= end:
            into.update(range(start, end + 1))
    return take - drop


def _mem_encryption(specs: Mapping[str, str], props: Mapping[str, str]) -> bool:
    return any(
        v is not None and v.lower() in _TRUE
        for v in (specs.get("hw:mem_encryption"), props.get("hw_mem_encryption"))
    )


def _vpmems(specs: Mapping[str, str]) -> list[str]:
    return [label.strip() for label in specs.get("hw:pmem", "").split(",") if label.strip()]


def _numa_nodes(
    specs: Mapping[str, str], props: Mapping[str, str], policy: str | None, pmem: list[str]
) -> int | None:
    """``numa_get_constraints``: pinning, hugepages, vPMEM or an explicit count give a NUMA topology."""
    explicit = {"VCPU": 0, "PCPU": 0}
    for key, value in specs.items():
        m = _EXPLICIT_CPU.match(key)
        if m:
            explicit[m.group(2)] += _int(value, 0)
    pinned = policy in ("dedicated", "mixed")
    if explicit["PCPU"]:  # resources:PCPU makes the guest pinned ...
        pinned = True
    if explicit["VCPU"]:  # ... and resources:VCPU shared
        pinned = False
    nodes = _int(specs.get("hw:numa_nodes") or props.get("hw_numa_nodes") or "", 0)
    if nodes or pinned or pmem or _page_size(specs.get("hw:mem_page_size")):
        return max(nodes, 1)
    return None


def _int(text: str, default: int) -> int:
    """An integer Nova's API would have checked; an old record's garbage is ``default``, never a crash."""
    try:
        return int(text)
    except ValueError:
        return default


def _page_size(value: str | None) -> bool:
    """Whether ``hw:mem_page_size`` asks for a page size (``0``, ``0KB``: it does not)."""
    if not value:
        return False
    number = re.match(r"\s*([0-9]+(\.[0-9]*)?)", value)
    return number is None or float(number.group(1)) != 0
