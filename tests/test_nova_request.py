"""Nova's rules for what an instance asks of a host, checked against Nova's own code.

:mod:`kronos.adapters.nova_request` restates ``ResourceRequest.from_request_spec``
and ``numa_get_constraints`` (nova 34). Here Nova itself, in the test cloud's
virtualenv, computes the request for a table of flavors and images and for
hundreds of random combinations of every extra spec and image property those
rules read; Kronos must agree on every one Nova's API would accept (the
others cannot exist in a cloud).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from typing import Any

import pytest

from kronos.adapters.nova import local_disk_gb
from kronos.adapters.nova_request import request
from tests.nova_server import nova_python, unavailable

pytestmark = pytest.mark.nova

#: run by the Nova virtualenv's python: Nova's answer per case, or why its API would refuse it
NOVA = r"""
import functools, json, os, sys
os.environ.setdefault("OS_NOVA_DISABLE_EVENTLET_PATCHING", "1")
import warnings
warnings.simplefilter("ignore")
from nova import objects
objects.register_all()
from nova.api.validation.extra_specs import validators
from nova.scheduler import utils
from nova.virt import hardware

@functools.cache  # the validator compiles regular expressions per call: 50 ms a case without this
def refusal(key, value):
    try:
        validators.validate(key, value)
    except Exception as exc:
        return exc
    return None

out = []
for case in json.load(sys.stdin):
    try:
        for key, value in case["extra_specs"].items():  # what POST /flavors/{id}/os-extra_specs checks
            if (exc := refusal(key, value)) is not None:
                raise exc
        flavor = objects.Flavor(
            name="f", vcpus=case["vcpus"], memory_mb=case["memory_mb"], root_gb=case["root_gb"],
            ephemeral_gb=case["ephemeral_gb"], swap=case["swap"], extra_specs=case["extra_specs"],
        )
        image = objects.ImageMeta.from_dict(
            {"id": "5d6e2b4a-6d7f-4f3e-9a8b-0c1d2e3f4a5b", "name": "i", "properties": case["image"]}
        )
        numa = hardware.numa_get_constraints(flavor, image)  # what the compute API checks at boot
        hardware.get_mem_encryption_constraint(flavor, image)
        hardware.get_vtpm_constraint(flavor, image)
        hardware.get_secure_boot_constraint(flavor, image)
        hardware.get_maxphysaddr_mode(flavor, image)
        hardware.get_pci_numa_policy_constraint(flavor, image)
        spec = objects.RequestSpec(flavor=flavor, image=image, is_bfv=case["is_bfv"], num_instances=1)
        req = utils.ResourceRequest.from_request_spec(spec)
        groups = list(req._rg_by_id.values())
        out.append({
            "resources": req.merged_resources(),
            "required": sorted(set().union(*(g.required_traits for g in groups))),
            "forbidden": sorted(set().union(*(g.forbidden_traits for g in groups))),
            "numa_nodes": len(numa.cells) if numa else None,
        })
    except Exception as exc:
        out.append({"refused": f"{type(exc).__name__}: {exc}"[:300]})
json.dump(out, sys.stdout)
"""

#: every extra spec and image property the rules read, with values Nova accepts and some it does not
SPECS: dict[str, tuple[str, ...]] = {
    "hw:cpu_policy": ("shared", "dedicated", "mixed"),
    "hw:cpu_dedicated_mask": ("^0", "1-2", "0,^0"),
    "hw:cpu_realtime": ("yes", "false"),
    "hw:cpu_realtime_mask": ("^0", "1"),
    "hw:cpu_thread_policy": ("prefer", "isolate", "require"),
    "hw:emulator_threads_policy": ("share", "isolate"),
    "hw:numa_nodes": ("1", "2"),
    "hw:mem_page_size": ("large", "small", "2048", "any", "2MB"),
    "resources:VCPU": ("0", "2"),
    "resources:PCPU": ("4", "0"),
    "resources:MEMORY_MB": ("1024", "0"),
    "resources:DISK_GB": ("0", "5"),
    "resources1:CUSTOM_MAGIC": ("1", "2"),
    "resources_gpu:VGPU": ("1",),
    "resources:VGPU": ("2",),
    "trait:CUSTOM_GOLD": ("required", "forbidden"),
    "trait1:CUSTOM_PHYSNET_A": ("required",),
    "trait:HW_CPU_HYPERTHREADING": ("required", "forbidden"),
    "group_policy": ("isolate", "none"),
    "hw:mem_encryption": ("true", "false"),
    "hw:mem_encryption_model": ("amd-sev-es",),
    "hw:pmem": ("small", "small,medium,small"),
    "hw:tpm_version": ("2.0", "1.2"),
    "hw:tpm_model": ("tpm-crb", "tpm-tis"),
    "hw:pci_numa_affinity_policy": ("socket", "preferred"),
    "os:secure_boot": ("required", "disabled"),
    "hw:maxphysaddr_mode": ("passthrough", "emulate"),
}
PROPS: dict[str, tuple[str, ...]] = {
    "trait:CUSTOM_IMG": ("required", "forbidden"),
    "trait:HW_CPU_HYPERTHREADING": ("required",),
    "hw_cpu_policy": ("dedicated", "shared"),
    "hw_cpu_thread_policy": ("isolate", "prefer"),
    "hw_cpu_realtime_mask": ("^0",),
    "hw_numa_nodes": ("2",),
    "hw_mem_page_size": ("large",),
    "hw_mem_encryption": ("true",),
    "hw_mem_encryption_model": ("amd-sev",),
    "hw_firmware_type": ("uefi", "bios"),
    "hw_machine_type": ("q35",),
    "hw_firmware_stateless": ("true", "false"),
    "os_secure_boot": ("required",),
    "hw_tpm_version": ("2.0",),
    "hw_maxphysaddr_mode": ("emulate",),
    "hw_pci_numa_affinity_policy": ("socket",),
}

#: named cases: the ones issue 18 is about, each a rule on its own
TABLE: list[dict[str, Any]] = [
    {"extra_specs": {}},
    {"extra_specs": {"hw:cpu_policy": "dedicated"}},
    {"extra_specs": {"hw:cpu_policy": "dedicated", "hw:emulator_threads_policy": "isolate"}},
    {"extra_specs": {"hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "isolate"}},
    {"extra_specs": {"hw:cpu_policy": "mixed", "hw:cpu_dedicated_mask": "^0"}},
    {"extra_specs": {"hw:cpu_policy": "mixed", "hw:cpu_realtime": "yes", "hw:cpu_realtime_mask": "^0-1"}},
    {"extra_specs": {"resources:PCPU": "4"}},
    {"extra_specs": {"resources:VCPU": "0", "resources:PCPU": "4"}},
    {"extra_specs": {"resources:DISK_GB": "0", "resources:MEMORY_MB": "0"}},
    {"extra_specs": {"resources1:VGPU": "1", "trait1:CUSTOM_VGPU_A100": "required"}},
    {"extra_specs": {"trait:CUSTOM_X": "required", "trait:CUSTOM_Y": "forbidden"}},
    {"extra_specs": {"hw:numa_nodes": "2"}},
    {"extra_specs": {"hw:mem_page_size": "large"}},
    {"extra_specs": {"hw:pmem": "small,large"}},
    {"extra_specs": {"hw:tpm_version": "2.0", "hw:tpm_model": "tpm-crb"}},
    {"extra_specs": {}, "image": {"hw_cpu_policy": "dedicated", "trait:CUSTOM_IMG": "required"}},
    {"extra_specs": {}, "image": {"hw_numa_nodes": "2"}},
    {"extra_specs": {}, "image": {"hw_firmware_type": "uefi", "hw_firmware_stateless": "true"}},
    {
        "extra_specs": {"hw:mem_encryption": "true"},
        "image": {"hw_firmware_type": "uefi", "hw_machine_type": "q35"},
    },
    {"extra_specs": {}, "is_bfv": True},
]


def _case(
    extra_specs: dict[str, str], image: dict[str, str] | None = None, is_bfv: bool = False, **size: int
) -> dict[str, Any]:
    return {
        "vcpus": size.get("vcpus", 4),
        "memory_mb": size.get("memory_mb", 2048),
        "root_gb": size.get("root_gb", 10),
        "ephemeral_gb": size.get("ephemeral_gb", 1),
        "swap": size.get("swap", 1536),
        "extra_specs": extra_specs,
        "image": image or {},
        "is_bfv": is_bfv,
    }


#: what only a pinned guest may ask for (Nova refuses it otherwise)
PINNED_ONLY = ("cpu_thread_policy", "emulator_threads_policy", "cpu_realtime", "cpu_dedicated_mask")


def _random_cases(n: int, seed: int = 18) -> list[dict[str, Any]]:
    """Random flavors and images, most of them ones Nova would accept (others too, to be refused)."""
    rng = random.Random(seed)

    def pick(pool: dict[str, tuple[str, ...]], p: float) -> dict[str, str]:
        return {k: rng.choice(v) for k, v in pool.items() if rng.random() < p}

    def coherent(specs: dict[str, str], props: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        if rng.random() < 0.8 and "dedicated" not in (specs.get("hw:cpu_policy"), props.get("hw_cpu_policy")):
            specs = {k: v for k, v in specs.items() if not any(w in k for w in PINNED_ONLY)}
            props = {k: v for k, v in props.items() if not any(w in k for w in PINNED_ONLY)}
        if rng.random() < 0.8 and "true" in (specs.get("hw:mem_encryption"), props.get("hw_mem_encryption")):
            props = {**props, "hw_firmware_type": "uefi", "hw_machine_type": "q35"}
        return specs, props

    return [
        _case(
            *coherent(pick(SPECS, 0.15), pick(PROPS, 0.1)),
            rng.random() < 0.2,
            vcpus=rng.choice((1, 2, 4)),
            memory_mb=rng.choice((512, 4096)),
            root_gb=rng.choice((0, 20)),
            ephemeral_gb=rng.choice((0, 2)),
            swap=rng.choice((0, 512, 2048)),
        )
        for _ in range(n)
    ]


def _nova(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(nova_python()), "-c", NOVA],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OS_NOVA_DISABLE_EVENTLET_PATCHING": "1"},
        timeout=300,
    )
    if out.returncode != 0:
        unavailable(f"Nova's rules did not run: {out.stderr[-1500:]}")
    answers: list[dict[str, Any]] = json.loads(out.stdout)
    return answers


def _kronos(case: dict[str, Any]) -> dict[str, Any]:
    disk = local_disk_gb(case["root_gb"], case["ephemeral_gb"], case["swap"], case["is_bfv"])
    got = request(case["vcpus"], case["memory_mb"], disk, case["extra_specs"], case["image"])
    return {
        "resources": got.resources,
        "required": sorted(got.required),
        "forbidden": sorted(got.forbidden),
        "numa_nodes": got.numa_nodes,
    }


def test_kronos_asks_what_nova_asks_for_every_flavor_and_image_nova_accepts() -> None:
    cases = [_case(**c) for c in TABLE] + _random_cases(1500)
    answers = _nova(cases)
    table = answers[: len(TABLE)]
    assert not [(c, a) for c, a in zip(TABLE, table, strict=True) if "refused" in a]  # all valid
    accepted = [(c, a) for c, a in zip(cases, answers, strict=True) if "refused" not in a]
    wrong = [(c, a, _kronos(c)) for c, a in accepted if _kronos(c) != a]
    assert not wrong, "\n".join(f"{c}\n  nova:   {a}\n  kronos: {k}" for c, a, k in wrong[:5])
    # the random half reached every rule, not only the easy ones
    random_answers = [a for _, a in accepted[len(TABLE) :]]
    assert len(random_answers) >= 500
    seen = {rc for a in random_answers for rc in a["resources"]}
    assert {"PCPU", "VGPU", "CUSTOM_MAGIC", "MEM_ENCRYPTION_CONTEXT", "CUSTOM_PMEM_NAMESPACE_SMALL"} <= seen
    traits = {t for a in random_answers for t in a["required"] + a["forbidden"]}
    assert {"HW_CPU_HYPERTHREADING", "COMPUTE_SECURITY_TPM_2_0", "CUSTOM_IMG", "CUSTOM_GOLD"} <= traits
    assert {a["numa_nodes"] for a in random_answers} == {None, 1, 2}


def test_the_named_cases_mean_what_issue_18_says() -> None:
    """Not Nova's answer restated: the facts the recorder relies on, readable in one place."""
    pinned = _kronos(_case({"hw:cpu_policy": "dedicated"}))
    assert pinned["resources"] == {"PCPU": 4, "MEMORY_MB": 2048, "DISK_GB": 13}  # 10 + 1 + 1536 MiB → 2
    assert pinned["numa_nodes"] == 1  # pinning gives a guest a NUMA topology of one cell
    traited = _kronos(_case({"trait:CUSTOM_X": "required"}, {"trait:CUSTOM_IMG": "required"}))
    assert traited["required"] == ["CUSTOM_IMG", "CUSTOM_X"] and traited["numa_nodes"] is None
    assert _kronos(_case({}, is_bfv=True))["resources"]["DISK_GB"] == 3  # no root disk from a volume
