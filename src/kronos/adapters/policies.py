"""policies.yaml: the operator's PromQL policies, in the original Kronos shape.

Loaded with ruamel.yaml's round-trip loader because it keeps line numbers:
an operator editing a 200-line policy file wants ``policies.yaml:41:
policies[1].weight = 1.7`` rather than a path alone. Every problem in the
file is reported at once (exit 78), and the cross-policy rules (weights sum
to 1, one mode, unique names) are the snapshot validator's, so a policy file
and a snapshot can never disagree about what a valid policy is.
"""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kronos.core.model import Policy, Snapshot
from kronos.core.options import INT64, did_you_mean
from kronos.core.validate import Issue, validate_policies
from kronos.errors import ConfigError, DataError, NoInputError, PermissionDenied, problem_list
from kronos.files import parse_yaml, read_text

LABEL_TYPES = ("nova_instance_uuid", "libvirt_domain_name", "server_name")
_REQUIRED = ("name", "mode", "weight", "threshold", "imbalance_query", "host_label")
_QUERIES = ("imbalance_query", "vm_profile_query", "freshness_query")
#: names and labels: an empty one matches nothing, silently
_NAMES = ("name", "host_label", "vm_profile_label")
#: Prometheus's rule for a label name; a host_label with a space could never match a series
_LABELS = ("host_label", "vm_profile_label")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "mode": (str,),
    "weight": (float, int),
    "threshold": (float, int),
    "max_migrations_per_cycle": (int, type(None)),
    "vm_profile_fallback": (str,),
    "max_host_score": (float, int),
    "enabled": (bool,),
    "imbalance_query": (str,),
    "host_label": (str,),
    "vm_profile_query": (str,),
    "vm_profile_label": (str,),
    "vm_profile_label_type": (str,),
    "freshness_query": (str,),
}
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _line(node: Any, key: str | int | None = None) -> int | None:
    """1-based line of ``node`` (or of ``key`` inside it) when ruamel kept one."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if isinstance(key, str):
            return int(lc.key(key)[0]) + 1
        return int(lc.item(key)[0] if key is not None else lc.line) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return int(lc.line) + 1


def _type_problem(field: str, value: Any) -> str | None:
    allowed = _TYPES[field]
    if isinstance(value, bool) and bool not in allowed:
        return f"expected {_TYPE_WORDS[allowed[0]]}, got a boolean"
    if isinstance(value, allowed):
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if isinstance(value, int) and not -INT64 <= value < INT64:  # a snapshot could not hold it
            return "integer out of range (it must fit in 64 bits)"
        return None
    return f"expected {_TYPE_WORDS[allowed[0]]}"


def _entry(i: int, node: Any, issues: list[tuple[int | None, Issue]]) -> Policy | None:
    at = f"policies[{i}]"
    if not isinstance(node, dict):
        issues.append((_line(node) or None, Issue(at, "expected a mapping of policy fields")))
        return None
    values: dict[str, Any] = {}
    ok = True
    for key, value in node.items():
        line = _line(node, key)
        if key not in _TYPES:
            issues.append((line, Issue(f"{at}.{key}", f"unknown field{did_you_mean(key, _TYPES)}")))
            ok = False
            continue
        why = _type_problem(key, value)
        if why:
            issues.append((line, Issue(f"{at}.{key}", why, value)))
            ok = False
            continue
        if key in _QUERIES and not str(value).strip():
            issues.append((line, Issue(f"{at}.{key}", "query must not be empty")))
            ok = False
            continue
        if key in _NAMES and not str(value).strip():
            issues.append((line, Issue(f"{at}.{key}", "must not be empty", value)))
            ok = False
            continue
        if key in _LABELS and not _LABEL_NAME.fullmatch(str(value)):
            why = "a Prometheus label name: letters, digits and _, not starting with a digit"
            issues.append((line, Issue(f"{at}.{key}", why, value)))
            ok = False
            continue
        values[key] = value
    for key in _REQUIRED:
        if key not in node:
            issues.append((_line(node), Issue(f"{at}.{key}", "missing required field")))
            ok = False
    if "vm_profile_query" in values and "vm_profile_label" not in values:
        issues.append((_line(node), Issue(f"{at}.vm_profile_label", "required with vm_profile_query")))
        ok = False
    for key in ("vm_profile_label", "vm_profile_label_type"):
        if key in values and "vm_profile_query" not in values:  # nothing would read it
            issues.append((_line(node, key), Issue(f"{at}.{key}", "only with vm_profile_query", values[key])))
            ok = False
    label_type = values.get("vm_profile_label_type")
    if label_type is not None and label_type not in LABEL_TYPES:
        line = _line(node, "vm_profile_label_type")
        why = f"must be one of {', '.join(LABEL_TYPES)}"
        issues.append((line, Issue(f"{at}.vm_profile_label_type", why, label_type)))
        ok = False
    if not ok:
        return None
    if "vm_profile_query" in values:
        values.setdefault("vm_profile_label_type", "nova_instance_uuid")
    for key in ("weight", "threshold", "max_host_score"):
        if key in values:
            values[key] = float(values[key])
    return Policy(**values)


def parse_policies(text: str, name: str) -> tuple[Policy, ...]:
    """Policies from the text of a policies.yaml; ``name`` prefixes every error."""
    try:
        doc = parse_yaml(text, name, typ="rt")  # depth, alias and recursion guards
    except DataError as exc:
        raise ConfigError(str(exc)) from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{name}: expected a top-level 'policies:' list")
    problems = [
        f"{name}:{_line(doc, k)}: {k!r}: unknown top-level key{did_you_mean(k, ('policies',))}"
        for k in doc
        if k != "policies"
    ]
    if "policies" not in doc:
        problems.insert(0, f"{name}: expected a top-level 'policies:' list")
    if problems:
        raise ConfigError(problem_list(name, problems))
    entries = doc["policies"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{name}:{_line(doc, 'policies')}: policies must be a non-empty list")
    issues: list[tuple[int | None, Issue]] = []
    built = [_entry(i, node, issues) for i, node in enumerate(entries)]
    policies = tuple(p for p in built if p is not None)
    if not issues and not any(p.enabled for p in policies):  # every cycle would end 65
        issues.append((_line(doc, "policies"), Issue("policies", "no policy is enabled: enable one")))
    if not issues:
        for issue in validate_policies(Snapshot(taken_at=_EPOCH, policies=policies)):
            index = _index(issue.path)
            node = entries[index] if index is not None else doc
            field = issue.path.rpartition(".")[2] if index is not None else "policies"
            issues.append((_line(node, field if field in node else None), issue))
    if issues:
        lines = [f"{name}:{line}: {issue}" if line else f"{name}: {issue}" for line, issue in issues]
        raise ConfigError(problem_list(name, lines))
    return policies


def load_policies(path: str | os.PathLike[str]) -> tuple[Policy, ...]:
    """Read and validate a policies.yaml; every problem in it is a ConfigError (exit 78).

    A policies file that is missing or cannot be read is exit 66, as any
    input file is; one that is not UTF-8 is a configuration error; a device or
    a pipe is no policies file (a FIFO waited for a writer for ever, /dev/zero
    was read to the 1 GiB cap).
    """
    where = Path(path)
    if where.exists() and not where.is_file() and not where.is_dir():  # (a folder: read_text says so)
        raise ConfigError(f"{where}: not a regular file ([engine] policies_file)")
    try:
        text, name = read_text(path)
    except (NoInputError, PermissionDenied) as exc:  # PermissionDenied: a file mode, not a cloud policy
        raise NoInputError(f"{exc} ([engine] policies_file)") from None
    except DataError as exc:
        raise ConfigError(f"{exc} ([engine] policies_file)") from None
    return parse_policies(text, name)


def _index(path: str) -> int | None:
    if not path.startswith("policies["):
        return None
    return int(path[len("policies[") : path.index("]")])
