"""``[nova] numa_topology_file``: the NUMA cells Nova keeps to itself, as the operator exports them.

Nova's API shows no NUMA topology: the cells of a compute node and the cells
each pinned or hugepage-backed guest occupies live in its database
(``compute_nodes.numa_topology``, ``instance_extra.numa_topology``) and in
libvirt (``virsh capabilities``, ``virsh numatune``). No common Prometheus
exporter publishes a guest's cells. So the operator's tooling writes them
here, in YAML (or JSON)::

    hosts:
      cmp-001:
        - {id: 0, vcpus: 16, memory_mb: 257536}
        - {id: 1, vcpus: 16, memory_mb: 257536}
    vms:
      6f1c5d3e-6b0a-4d5e-8f1a-2b3c4d5e6f70: [0]
      0a4b9c2d-1e3f-4a5b-8c7d-9e0f1a2b3c4d: [0, 1]

The file's form is checked here, every problem at once, each naming the
file, the path and the value (exit 65; missing or unreadable: 66). Whether
it agrees with the cloud (a host Nova no longer has, a VM that moved since
the file was written) is the recorder's question: the file may lag behind.
"""

from __future__ import annotations

import math
import os
from typing import Any

from attrs import frozen

from kronos.core.model import NumaCell
from kronos.core.options import nearest
from kronos.core.validate import Issue, key_path
from kronos.errors import ValidationError
from kronos.files import read_document

SECTIONS = ("hosts", "vms")
CELL_KEYS = ("id", "vcpus", "memory_mb")


@frozen
class NumaTopology:
    hosts: dict[str, tuple[NumaCell, ...]]  # host → its cells (what NUMA-placed guests may use)
    vms: dict[str, tuple[int, ...]]  # instance UUID → the host cells it occupies
    source: str


def load(path: str | os.PathLike[str]) -> NumaTopology:
    document, name = read_document(path)
    issues: list[Issue] = []
    hosts: dict[str, tuple[NumaCell, ...]] = {}
    vms: dict[str, tuple[int, ...]] = {}
    if not isinstance(document, dict):
        raise ValidationError(name, [Issue("(top)", "expected a mapping with hosts and/or vms", document)])
    _duplicates("", document, issues)
    for key in document:
        if key not in SECTIONS:
            issues.append(_unknown(key_path("", str(key)), str(key), SECTIONS))
    for host, cells in _mapping("hosts", document.get("hosts"), issues).items():
        at = key_path("hosts", host)
        if not isinstance(cells, list) or not cells:
            issues.append(Issue(at, "expected a list of cells ({id, vcpus, memory_mb})", cells))
            continue
        parsed = [_cell(key_path(at, j), c, issues) for j, c in enumerate(cells)]
        ids = [c.id for c in parsed if c is not None]
        if len(set(ids)) != len(ids):
            issues.append(Issue(at, "cell ids must be distinct", ids))
        hosts[host] = tuple(c for c in parsed if c is not None)
    for vm, cells in _mapping("vms", document.get("vms"), issues).items():
        at = key_path("vms", vm)
        if not (isinstance(cells, list) and cells and all(_cell_id(c) for c in cells)):
            issues.append(Issue(at, "expected a list of host cell ids (integers >= 0)", cells))
        elif len(set(cells)) != len(cells):
            issues.append(Issue(at, "cell ids must be distinct", cells))
        else:
            vms[vm] = tuple(cells)
    if issues:
        raise ValidationError(name, issues)
    return NumaTopology(hosts, vms, name)


def _mapping(section: str, value: Any, issues: list[Issue]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        what = "host name → list of cells" if section == "hosts" else "instance UUID → list of cell ids"
        issues.append(Issue(section, f"expected a mapping of {what}", value))
        return {}
    _duplicates(section, value, issues)
    out = {}
    for key, item in value.items():
        if isinstance(key, str) and key.strip():
            out[key] = item
        else:
            issues.append(Issue(key_path(section, str(key)), "expected a name (a non-empty string)", key))
    return out


def _cell(at: str, cell: Any, issues: list[Issue]) -> NumaCell | None:
    if not isinstance(cell, dict):
        issues.append(Issue(at, "expected a cell: {id, vcpus, memory_mb}", cell))
        return None
    _duplicates(at, cell, issues)
    ok = True
    for key in cell:
        if key not in CELL_KEYS:
            issues.append(_unknown(key_path(at, str(key)), str(key), CELL_KEYS))
            ok = False
    for key in CELL_KEYS:
        if key not in cell:
            issues.append(Issue(at, f"missing {key}"))
            ok = False
    if "id" in cell and not _cell_id(cell["id"]):
        issues.append(Issue(f"{at}.id", "must be an integer >= 0", cell["id"]))
        ok = False
    for key in ("vcpus", "memory_mb"):
        x = cell.get(key, 0)
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x < 0:
            issues.append(Issue(f"{at}.{key}", "must be a number >= 0", x))
            ok = False
    return NumaCell(cell["id"], float(cell["vcpus"]), float(cell["memory_mb"])) if ok else None


def _cell_id(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _duplicates(at: str, mapping: dict[Any, Any], issues: list[Issue]) -> None:
    """Keys a JSON object names twice (the reader keeps them for us to report)."""
    for key, times in (getattr(mapping, "duplicates", None) or {}).items():
        issues.append(Issue(key_path(at, str(key)), f"named {times} times"))


def _unknown(at: str, key: str, known: tuple[str, ...]) -> Issue:
    near = nearest(key, known)
    hint = f"; did you mean {near}?" if near else f" (known: {', '.join(known)})"
    return Issue(at, f"unknown key{hint}")
