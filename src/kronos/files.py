"""Reading and writing documents: JSON or YAML, paths or open files, ``-`` for stdio.

Writes are atomic (a temporary file in the same directory, fsync, rename), so
a reader never sees half a plan or half a state file, even after SIGKILL.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from kronos.core.convert import digest_of, make_converter, structure, unstructure
from kronos.core.model import Plan, Snapshot, State
from kronos.errors import DataError, KronosIOError, NoInputError, PermissionDenied

T = TypeVar("T")
PathOrFile = str | os.PathLike[str] | IO[str] | IO[bytes]
YAML_SUFFIXES = (".yaml", ".yml")


def _name(src: PathOrFile) -> str:
    if isinstance(src, str | os.PathLike):
        return "<stdin>" if str(src) == "-" else str(src)
    return str(getattr(src, "name", "<stream>"))


def read_text(src: PathOrFile) -> tuple[str, str]:
    """Return (text, name) for a path, ``-`` (stdin) or an open file."""
    name = _name(src)
    try:
        if isinstance(src, str | os.PathLike):
            if str(src) == "-":
                return sys.stdin.read(), name
            return Path(src).read_text(encoding="utf-8"), name
        data = src.read()
    except FileNotFoundError as exc:
        raise NoInputError(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise NoInputError(f"{name}: is a directory, expected a file") from exc
    except PermissionError as exc:
        raise PermissionDenied(f"{name}: permission denied") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise KronosIOError(f"{name}: {exc.strerror or exc}") from exc
    return (data.decode("utf-8") if isinstance(data, bytes) else data), name


def parse(text: str, name: str) -> Any:
    """JSON for ``{``-led text or .json names; YAML otherwise (a superset)."""
    looks_json = text.lstrip().startswith(("{", "[")) and not name.endswith(YAML_SUFFIXES)
    if looks_json or name.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise DataError(f"{name}: invalid YAML: {exc}") from exc


def read_document(src: PathOrFile) -> tuple[Any, str]:
    text, name = read_text(src)
    return parse(text, name), name


def _load(src: PathOrFile, cls: type[T]) -> T:
    data, name = read_document(src)
    return structure(data, cls, name)


def load_snapshot(src: PathOrFile) -> Snapshot:
    """Read a ``kronos.snapshot/1`` document (structure only; see ``kronos.validate``)."""
    data, name = read_document(src)
    snap = structure(data, Snapshot, name)
    object.__setattr__(snap, "digest", digest_of(data))  # frozen; set once, here
    return snap


def load_plan(src: PathOrFile) -> Plan:
    return _load(src, Plan)


def load_state(src: PathOrFile) -> State:
    return _load(src, State)


def render(obj: Any, yaml: bool = False) -> str:
    data = unstructure(obj, make_converter())
    if not yaml:
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    from ruamel.yaml import YAML

    out = io.StringIO()
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    y.dump(data, out)
    return out.getvalue()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new, never half."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except FileNotFoundError as exc:
        raise KronosIOError(f"{target}: directory {target.parent} does not exist") from exc
    except PermissionError as exc:
        raise PermissionDenied(f"{target}: cannot write in {target.parent}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).chmod(0o644 & ~_umask())
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dump(obj: Any, dest: PathOrFile) -> None:
    """Write a Snapshot, Plan or State as JSON (YAML for .yaml/.yml paths)."""
    if isinstance(dest, str | os.PathLike):
        name = str(dest)
        text = render(obj, yaml=name.endswith(YAML_SUFFIXES))
        if name == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        try:
            write_text_atomic(dest, text)
        except OSError as exc:
            raise KronosIOError(f"{name}: {exc.strerror or exc}") from exc
        return
    name = _name(dest)
    text = render(obj, yaml=name.endswith(YAML_SUFFIXES))
    if isinstance(dest, io.TextIOBase) or "b" not in getattr(dest, "mode", ""):
        cast(IO[str], dest).write(text)
    else:
        cast(IO[bytes], dest).write(text.encode())
