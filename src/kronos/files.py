"""Reading and writing documents: JSON or YAML, paths or open files, ``-`` for stdio.

Writes are atomic (a temporary file in the same directory, fsync, rename), so
a reader never sees half a plan or half a state file, even after SIGKILL.

Parsing is defensive, because documents come from other programs and from
hand edits: a JSON object naming a key twice is kept for the reader to
report (not silently "last wins"); nesting deeper than the model could use
and YAML aliases that expand a small file into gigabytes are refused before
anything walks them. Every failure is a :class:`~kronos.errors.KronosError`
with its sysexits code: 65 for bad content, 66 for a file that is missing
or unreadable, 74 for an I/O failure.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import hashlib
import io
import itertools
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from kronos.core.convert import MAX_DEPTH, DuplicateKeys, digest_of, make_converter, structure, unstructure
from kronos.core.model import Plan, Snapshot, State
from kronos.errors import DataError, KronosIOError, NoInputError
from kronos.terminal import printable, stdout_refusals

#: nodes that YAML aliases may add to a document (a merge key or two, never a "billion laughs")
YAML_ALIAS_BUDGET = 10_000

T = TypeVar("T")
PathOrFile = str | os.PathLike[str] | IO[str] | IO[bytes]
YAML_SUFFIXES = (".yaml", ".yml")


def yaml_named(name: str | os.PathLike[str]) -> bool:
    """Whether a document written to ``name`` is YAML (``.yaml``/``.yml``, any case) or JSON."""
    return Path(name).suffix.lower() in YAML_SUFFIXES


def _name(src: PathOrFile) -> str:
    if isinstance(src, str | os.PathLike):
        return "<stdin>" if str(src) == "-" else str(src)
    return str(getattr(src, "name", "<stream>"))


#: a UTF-8 byte order mark, as Python reads it
BOM = "\ufeff"


#: the most a document may hold, in bytes (characters, from a text stream): a 5 000-VM snapshot
#: is 2.5 MB. Past it, a wrong file or a device that never ends (``--state /dev/zero``) would
#: take all memory before anything could be said about it.
MAX_DOCUMENT_BYTES = 1 << 30


def _bounded(src: IO[Any], name: str, limit: int | None = None) -> Iterator[Any]:
    """``src`` in chunks, DataError (65) once it has held more than ``limit`` bytes
    (:data:`MAX_DOCUMENT_BYTES` unless told)."""
    limit = MAX_DOCUMENT_BYTES if limit is None else limit
    size = 0
    # a MiB at a time: read(limit + 1) would reserve the whole limit for every 3-byte file
    while chunk := src.read(min(1 << 20, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            raise DataError(
                f"{name}: more than {limit} bytes: too large (a device or a stream that does not end?)"
            )
        yield chunk


def read_bounded(src: IO[bytes], name: str, limit: int | None = None) -> bytes:
    """All of ``src``, or DataError (65) when it holds more than ``limit`` bytes."""
    return b"".join(_bounded(src, name, limit))


def _read_utf8(src: IO[str] | IO[bytes], name: str) -> str:
    """All of ``src`` as text, bytes decoded as they arrive: ``kronos plan /dev/urandom`` is
    refused at its first MiB, not after reading a GiB to decode."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    parts: list[str] = []
    read = 0  # bytes given to the decoder
    for chunk in itertools.chain(_bounded(src, name), [b""]):  # b"": the end, final
        if isinstance(chunk, str):  # a text stream: decoded already
            parts.append(chunk)
            continue
        start = read - len(decoder.getstate()[0])  # of what the decoder holds, and this chunk
        read += len(chunk)
        try:
            parts.append(decoder.decode(chunk, final=not chunk))
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: not UTF-8 text ({exc.reason} at byte {start + exc.start})") from exc
    return "".join(parts)


def read_text(src: PathOrFile) -> tuple[str, str]:
    """Return (text, name) for a path, ``-`` (stdin) or an open file; a UTF-8 byte order mark
    (which Windows editors write) is dropped, as YAML and kronos.conf drop it (JSON may: RFC 8259)."""
    name = _name(src)
    try:
        if isinstance(src, str | os.PathLike) and str(src) == "-":
            if sys.stdin is None:  # started with it closed (<&-)
                raise NoInputError(f"{name}: standard input is closed")
            text = _read_utf8(getattr(sys.stdin, "buffer", sys.stdin), name)
        elif isinstance(src, str | os.PathLike):
            with Path(src).open("rb") as fh:
                text = _read_utf8(fh, name)
        else:
            text = _read_utf8(src, name)
    except UnicodeDecodeError as exc:  # an open text stream decodes inside read(): its offset
        raise DataError(f"{name}: not UTF-8 text ({exc.reason})") from exc  # is of its buffer
    except FileNotFoundError as exc:
        raise NoInputError(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise NoInputError(f"{name}: is a directory, expected a file") from exc
    except PermissionError as exc:  # sysexits: EX_NOINPUT is "did not exist or was not readable"
        raise NoInputError(f"{name}: not readable (permission denied)") from exc
    except OSError as exc:
        raise KronosIOError(f"{name}: {exc.strerror or exc}") from exc
    return text.removeprefix(BOM), name


def parse(text: str, name: str) -> Any:
    """JSON for ``{``-led text or .json names; YAML otherwise (a superset)."""
    looks_json = text.lstrip().startswith(("{", "[")) and not name.endswith(YAML_SUFFIXES)
    if looks_json or name.endswith(".json"):
        return parse_json(text, name)
    return parse_yaml(text, name)


def _keep_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    marked = DuplicateKeys(pairs)
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    marked.duplicates = {k: n for k, n in counts.items() if n > 1}
    return marked


def parse_json(text: str, name: str) -> Any:
    """Parse JSON; objects naming a key twice come back as :class:`DuplicateKeys`."""
    try:
        return json.loads(text, object_pairs_hook=_keep_duplicates)
    except json.JSONDecodeError as exc:
        raise DataError(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise DataError(f"{name}: invalid JSON: nested more than {MAX_DEPTH} levels deep") from exc
    except ValueError as exc:  # an integer of more digits than Python converts (sys.int_info)
        limit = sys.get_int_max_str_digits()
        found = re.search(rf"\d{{{limit + 1},}}", text)
        if found is None:
            raise DataError(f"{name}: invalid JSON: {exc}") from exc
        line = text.count("\n", 0, found.start()) + 1
        why = f"a number of {len(found.group())} digits (at most {limit})"
        raise DataError(f"{name}:{line}: invalid JSON: {why}") from exc


def parse_yaml(text: str, name: str, *, typ: str = "safe") -> Any:
    """Parse YAML with the guards every YAML input needs (documents and policies.yaml alike).

    Nesting is limited to ``MAX_DEPTH``, aliases may add at most
    ``YAML_ALIAS_BUDGET`` nodes (a 483-byte "billion laughs" expands to
    gigabytes when walked), a recursive alias is refused, and with
    ``typ="safe"`` the result holds only what JSON can say: timestamps stay
    strings. ``typ="rt"`` keeps ruamel's line numbers for policies.yaml.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    composer, constructor = _yaml_guards()
    yaml = YAML(typ=typ, pure=True)
    yaml.Composer = composer
    if typ == "safe":
        yaml.Constructor = constructor
    stream = io.StringIO(text)
    stream.name = name  # ruamel's marks name it: 'in "snap.yaml", line 41, column 3'
    try:
        return yaml.load(stream)
    except YAMLError as exc:
        raise DataError(f"{name}: invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise DataError(f"{name}: invalid YAML: nested too deeply") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # a scalar its constructor cannot build
        raise DataError(f"{name}: invalid YAML: {exc}".split("; use sys.")[0]) from exc


@cache
def _yaml_guards() -> tuple[Any, Any]:
    """ruamel classes with the guards (built once, on first use: ruamel loads slowly)."""
    from ruamel.yaml.composer import Composer, ComposerError
    from ruamel.yaml.constructor import SafeConstructor
    from ruamel.yaml.events import AliasEvent
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    class GuardedComposer(Composer):
        def compose_document(self) -> Any:
            self.open_anchors: list[str | None] = []
            self.sizes: dict[int, int] = {}
            self.expanded = 0
            return super().compose_document()

        def refuse(self, what: str, event: Any) -> None:
            raise ComposerError(None, None, what, event.start_mark)

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.parser.peek_event()
            if isinstance(event, AliasEvent):
                if event.anchor in self.open_anchors:
                    self.refuse(f"alias *{event.anchor} refers to a node that contains it", event)
                target = self.anchors.get(event.anchor)
                if target is not None:
                    self.expanded += self.size(target)
                    if self.expanded > YAML_ALIAS_BUDGET:
                        self.refuse(f"aliases expand to more than {YAML_ALIAS_BUDGET} nodes", event)
                return super().compose_node(parent, index)
            if len(self.open_anchors) >= MAX_DEPTH:
                self.refuse(f"nested more than {MAX_DEPTH} levels deep", event)
            if event.anchor is not None and event.anchor in self.anchors:
                self.refuse(f"anchor &{event.anchor} defined twice", event)
            self.open_anchors.append(event.anchor)
            try:
                return super().compose_node(parent, index)
            finally:
                self.open_anchors.pop()

        def size(self, node: Any) -> int:
            """Nodes in ``node`` with every alias expanded (memoised: linear in the graph)."""
            known = self.sizes.get(id(node))
            if known is None:
                known = 1
                if isinstance(node, SequenceNode):
                    known += sum(self.size(x) for x in node.value)
                elif isinstance(node, MappingNode):
                    known += sum(self.size(k) + self.size(v) for k, v in node.value)
                self.sizes[id(node)] = known
            return known

    class JsonConstructor(SafeConstructor):
        """YAML's safe types minus the one JSON lacks that documents would meet: timestamps."""

    JsonConstructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)
    return GuardedComposer, JsonConstructor


def read_document(src: PathOrFile) -> tuple[Any, str]:
    text, name = read_text(src)
    with _gc_paused():
        return parse(text, name), name


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while a document is parsed and read.

    Both allocate millions of objects and no cycles, and each allocation
    counts toward a collection that walks every live object. On a 100 000-VM
    snapshot (medians of 3, a busy 2-core machine): ``json.loads`` 0.88 s with
    the collector running, 0.55 s without; ``load_snapshot`` 3.9 s and 3.0 s.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(src: PathOrFile, cls: type[T]) -> T:
    text, name = read_text(src)
    with _gc_paused():
        return structure(parse(text, name), cls, name)


def load_snapshot(src: PathOrFile) -> Snapshot:
    """Read a ``kronos.snapshot/1`` document (structure only; see ``kronos.validate``)."""
    text, name = read_text(src)
    with _gc_paused():
        data = parse(text, name)
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

    # plain JSON values: numpy's float64 (a float subclass the plain-Python kernels leave in the
    # figures) is JSON's float but no type YAML's safe representer knows
    data = json.loads(json.dumps(data, allow_nan=False))
    out = io.StringIO()
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    # as YAML 1.1, which PyYAML (Ansible's) reads: written as 1.2, `1e-06` was a string there and
    # a host named `yes` a boolean; 1.1 spells `1.0e-06` and quotes 'yes', and 1.2 readers agree
    y.version = (1, 1)
    y.dump(data, out)
    return out.getvalue()


#: paths that name a descriptor the process already has (resolved, they name /proc entries
#: such as pipe:[N] that cannot be renamed over)
_FD_PATH = re.compile(r"/dev/(?:stdout|stderr|fd/\d+)|/proc/(?:self|\d+)/fd/\d+")


def unmakeable_folder(path: Path) -> str:
    """Why ``path`` cannot be made a folder this process writes in ("" if it can), read without
    making anything; OSError for a folder on the way it may not search."""
    there = next(p for p in (path, *path.parents) if p.exists())
    if not there.is_dir():
        return f"{there} is not a folder"
    return "" if os.access(there, os.W_OK | os.X_OK) else f"cannot write in {there}"


def unwritable_file(path: Path) -> str:
    """Why this process could not write the file ``path`` into its folder ("" if it could), read
    without writing; OSError for a folder on the way it may not search."""
    if path.is_dir():
        return f"{path} is a folder"
    if not path.parent.is_dir():
        return f"no folder {path.parent}"
    return "" if os.access(path if path.exists() else path.parent, os.W_OK) else f"cannot write {path}"


def is_stdout(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``-`` or a name of this process's standard output (``/dev/stdout``,
    ``/dev/fd/1``): a command writing its document there prints nothing else on it (the table
    after a plan's JSON made the output neither). By name, not by the file: on a terminal
    ``/dev/stderr`` is the same device, and its document goes beside the table."""
    named = str(path) if str(path) == "-" else str(Path(path).absolute())
    return named in ("-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", f"/proc/{os.getpid()}/fd/1")


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` so that readers see the old file or the new,
    never half.

    What the operator named is what gets written: a symlink is written through (its
    target replaced, the link kept); a device or a pipe (``-o /dev/null``, a FIFO) and a
    descriptor (``-o /dev/stdout``, appended to, as ``-`` writes) are written into, since
    renaming over one would replace a device node with a file; a file that was there
    keeps its permissions. Errors name ``path`` and exit 74, permission refused included
    (77 is the cloud's refusal, FORMATS §2).
    """
    raw = data.encode() if isinstance(data, str) else data
    try:
        _write_atomic(path, raw)
    except PermissionError as exc:
        raise KronosIOError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except FileNotFoundError as exc:
        where = Path(os.path.realpath(path)).parent
        if not where.is_dir():
            raise KronosIOError(f"{path}: directory {where} does not exist") from exc
        raise KronosIOError(f"{path}: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise KronosIOError(f"{path}: {exc.strerror or exc}") from exc


def folder_wanted(path: str | os.PathLike[str], why: str, label: str = "") -> Path:
    """``path``, which must be a folder if it is there: a file in a folder's place is 74, as a
    folder in a file's place is when :func:`write_atomic` meets one. ``label``: the flag that
    named it (``-o``), ``why``: what the folder is for."""
    where = Path(path)
    if where.exists() and not where.is_dir():
        raise KronosIOError(f"{label + ' ' if label else ''}{where}: not a folder ({why})")
    return where


#: the longest user-chosen name put into a file name (a chart's, a saved plan's): with the rest
#: of the name and a temporary file's affixes it stays under the 255 bytes file systems allow
NAME_PART_MAX = 100


def shortened(part: str, name: str) -> str:
    """``part`` (``name`` made fit for a file name) cut to :data:`NAME_PART_MAX` characters, with a
    hash of the whole ``name``, so that two names alike in their first hundred stay two files."""
    if len(part) <= NAME_PART_MAX:
        return part
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{part[: NAME_PART_MAX - 9]}~{digest}"


def make_folder(path: str | os.PathLike[str], why: str = "", label: str = "") -> Path:
    """``mkdir -p``, with an error that names the folder (74)."""
    where = folder_wanted(path, why, label) if why else Path(path)
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        named = f"{label} {where}" if label else str(where)
        raise KronosIOError(f"{named}: cannot make the folder ({exc.strerror or exc})") from exc
    return where


def _write_atomic(path: str | os.PathLike[str], raw: bytes) -> None:
    if _FD_PATH.fullmatch(str(Path(path).absolute())):  # /dev/stdout, /dev/fd/N: the shell's
        with Path(path).open("ab") as fh:  # "a": a `>> log` keeps what it had
            fh.write(raw)
        return
    target = Path(os.path.realpath(path))
    try:
        mode = target.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        with target.open("wb") as fh:
            fh.write(raw)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).chmod(stat.S_IMODE(mode) if mode is not None else 0o644 & ~_umask())
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def shared_file(named: Iterable[tuple[str, str | os.PathLike[str] | None]]) -> tuple[str, str] | None:
    """The first label of ``named`` whose path names a file an earlier one named too, with that
    earlier label: one written into another (``-o x --state x``, an audit log that is the state)
    breaks it. Devices, pipes and descriptors (``/dev/null``, ``/dev/stdout``) are no files and
    may repeat."""
    seen: dict[Path, str] = {}
    for label, path in named:
        if path is None or str(path) == "-" or _FD_PATH.fullmatch(str(Path(path).absolute())):
            continue
        real = Path(path).resolve()
        if real.exists() and not real.is_file():
            continue
        if real in seen:
            return label, seen[real]
        seen[real] = label
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _readable_size(text: str, name: str) -> None:
    """A document no reader would take is not written (``generate --vms 2300000`` wrote 1.13 GB
    that ``validate`` and ``plan`` then refused): 65, before a byte is written."""
    if (
        len(text) > MAX_DOCUMENT_BYTES // 4
        and (size := len(text.encode("utf-8", "surrogatepass"))) > MAX_DOCUMENT_BYTES
    ):
        raise DataError(
            f"{name}: the document would be {size} bytes, over the {MAX_DOCUMENT_BYTES} every reader "
            "takes: not written (fewer VMs, hosts or history samples)"
        )


def dump(obj: Any, dest: PathOrFile) -> None:
    """Write a Snapshot, Plan or State as JSON (YAML for .yaml/.yml paths)."""
    if isinstance(dest, str | os.PathLike):
        name = str(dest)
        text = render(obj, yaml=yaml_named(name))
        _readable_size(text, name)
        if name == "-":  # JSON escapes C0 itself; printable() the rest, which reads back the same
            if sys.stdout is None:  # started with it closed (>&-)
                raise KronosIOError("standard output: closed, nowhere to write the document")
            with stdout_refusals():
                sys.stdout.write(printable(text))
                sys.stdout.flush()
            return
        write_atomic(dest, text)
        return
    name = _name(dest)
    text = render(obj, yaml=yaml_named(name))
    if isinstance(dest, io.TextIOBase) or "b" not in getattr(dest, "mode", ""):
        cast(IO[str], dest).write(text)
    else:
        cast(IO[bytes], dest).write(text.encode())
