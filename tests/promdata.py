"""Synthetic exporter history for a real Prometheus, and what it is meant to say.

node_exporter- and libvirt-exporter-shaped series (the metric and label
names the sample policies query) for a cloud whose true per-host load and
per-VM share are chosen first; the series are derived from them, so a test
can compare what the sample PromQL returns with the truth. Counters grow
linearly, which makes ``rate()`` exact. A few extra hosts and VMs carry one
data fault each, for the data-health tests.

History runs from ``END - HISTORY`` to ``END + FUTURE``: queries at ``END``
sit well inside the data, away from rate()'s extrapolation at its edge, and
the recorder's default 30-minute history window ends at ``END`` with every
sample's ``rate(...[5m])`` inside the data too (exporters run for longer
than the window).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kronos.adapters.scores import VMRef

END = 1_767_225_600  # 2026-01-01T00:00:00Z, the evaluation time of every test query
STEP = 30
HISTORY = 40 * 60
FUTURE = 10 * 60
GIB = 1 << 30
STALE_FOR = 240  # the stale host's exporter stopped this many seconds before END
FAULTS = ("gone", "nan", "inf", "over", "dup", "stale")


@dataclass
class Host:
    name: str
    cpus: int
    mem_total: float
    cpu: float  # true busy fraction: the cpu-spread score
    mem: float  # true used fraction: the memory-spread score
    instances: tuple[str, ...] = ()  # node_exporter targets reporting this nodename
    stops_at: int = END + FUTURE
    mem_available: float | None = None  # override (faults): NaN, negative


@dataclass
class VM:
    id: str
    name: str
    domain: str
    host: str
    cores: float
    rss: float
    extra_hosts: tuple[str, ...] = ()  # also reported by these hosts' libvirt exporters
    rss_override: float | None = None
    exported: bool = True


@dataclass
class Truth:
    hosts: dict[str, Host] = field(default_factory=dict)
    vms: dict[str, VM] = field(default_factory=dict)
    aggregates: dict[str, list[str]] = field(default_factory=dict)

    def vm_cpu(self, vm: VM) -> float:
        return vm.cores / self.hosts[vm.host].cpus

    def vm_mem(self, vm: VM) -> float:
        return vm.rss / self.hosts[vm.host].mem_total

    @property
    def refs(self) -> list[VMRef]:
        return [VMRef(v.id, v.name, v.domain) for v in self.vms.values()]

    @property
    def good_vms(self) -> list[VM]:
        return [v for v in self.vms.values() if v.exported and not v.extra_hosts and v.rss_override is None]


def build(hosts: int = 50, vms: int = 1000, seed: int = 7) -> Truth:
    rng = random.Random(seed)
    truth = Truth()
    names = [f"cmp-{i:03d}" for i in range(1, hosts + 1)]
    placed: dict[str, list[VM]] = {n: [] for n in names}
    for i in range(vms):
        host = rng.choice(names)
        vm = VM(
            id=f"{rng.getrandbits(128):032x}",
            name=f"vm-{i:04d}",
            domain=f"instance-{i + 1:08x}",
            host=host,
            cores=rng.uniform(0.05, 0.5),
            rss=rng.uniform(0.5, 4.0) * GIB,
        )
        placed[host].append(vm)
        truth.vms[vm.id] = vm
    for n in names:
        cpus = rng.choice([16, 32])
        total = rng.choice([128, 256]) * GIB
        cpu = (sum(v.cores for v in placed[n]) + rng.uniform(0.1, 0.5)) / cpus
        mem = (sum(v.rss for v in placed[n]) + rng.uniform(2, 6) * GIB) / total
        truth.hosts[n] = Host(n, cpus, total, cpu, mem, (f"{n}:9100",))
    truth.aggregates["agg-good"] = list(names)
    # one host per data fault, each in a small aggregate of its own
    for kind in FAULTS:
        name = f"{kind}-01"
        host = Host(name, 8, 64 * GIB, rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.6), (f"{name}:9100",))
        if kind == "nan":
            host.mem_available = float("nan")
        elif kind == "inf":  # a MemTotal of 0: MemAvailable / 0 = +Inf, the score -Inf
            host.mem_total = 0.0
            host.mem_available = 32.0 * GIB
        elif kind == "over":
            host.mem_available = -0.4 * 64 * GIB
        elif kind == "dup":
            host.instances = (f"{name}:9100", f"{name}-old:9100")
        elif kind == "stale":
            host.stops_at = END - STALE_FOR
        if kind != "gone":
            truth.hosts[name] = host
        truth.aggregates[f"agg-{kind}"] = [*names[:4], name]
    # VM profile faults, on good hosts: never exported, exported twice, NaN memory
    faulty = list(truth.vms.values())[:3]
    faulty[0].exported = False
    faulty[1].extra_hosts = (names[-1],)
    faulty[2].rss_override = float("nan")
    return truth


def _num(x: float) -> str:
    return "NaN" if x != x else repr(float(x))


def _labels(**kw: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in kw.items()) + "}"


def _times(stop: int) -> Iterator[int]:
    yield from range(END - HISTORY, min(stop, END + FUTURE) + 1, STEP)


def openmetrics(truth: Truth) -> str:
    """The whole history as one OpenMetrics document (families contiguous, times ascending)."""
    out: list[str] = []
    hosts = list(truth.hosts.values())

    def family(name: str, kind: str) -> None:
        out.append(f"# TYPE {name} {kind}")

    family("node_uname_info", "gauge")
    for h in hosts:
        for inst in h.instances:
            lab = _labels(instance=inst, job="node", nodename=h.name, sysname="Linux")
            out.extend(f"node_uname_info{lab} 1 {t}" for t in _times(h.stops_at))
    family("node_cpu_seconds", "counter")
    for h in hosts:
        idle = 1.0 - h.cpu
        spread = min(idle, h.cpu) * 0.5
        for inst in h.instances:
            for k in range(h.cpus):
                rate = idle + spread * (2 * k / (h.cpus - 1) - 1)  # per-CPU rates average to idle
                lab = _labels(cpu=str(k), instance=inst, job="node", mode="idle")
                base = 1e5 * (k + 1)
                out.extend(
                    f"node_cpu_seconds_total{lab} {_num(base + rate * (t - END + HISTORY))} {t}"
                    for t in _times(h.stops_at)
                )
    family("node_memory_MemTotal_bytes", "gauge")
    for h in hosts:
        for inst in h.instances:
            lab = _labels(instance=inst, job="node")
            out.extend(f"node_memory_MemTotal_bytes{lab} {_num(h.mem_total)} {t}" for t in _times(h.stops_at))
    family("node_memory_MemAvailable_bytes", "gauge")
    for h in hosts:
        avail = h.mem_available if h.mem_available is not None else h.mem_total * (1.0 - h.mem)
        for inst in h.instances:
            lab = _labels(instance=inst, job="node")
            out.extend(f"node_memory_MemAvailable_bytes{lab} {_num(avail)} {t}" for t in _times(h.stops_at))

    exported = [(vm, h) for vm in truth.vms.values() if vm.exported for h in (vm.host, *vm.extra_hosts)]
    family("libvirt_domain_openstack_info", "gauge")
    for vm, h in exported:
        lab = _labels(
            domain=vm.domain,
            instance=f"{h}:9177",
            instance_id=vm.id,
            instance_name=vm.name,
            job="libvirt",
            project_id="p1",
        )
        out.extend(f"libvirt_domain_openstack_info{lab} 1 {t}" for t in _times(END + FUTURE))
    family("libvirt_domain_info_cpu_time_seconds", "counter")
    for vm, h in exported:
        lab = _labels(domain=vm.domain, instance=f"{h}:9177", job="libvirt")
        out.extend(
            f"libvirt_domain_info_cpu_time_seconds_total{lab} {_num(vm.cores * (t - END + HISTORY))} {t}"
            for t in _times(END + FUTURE)
        )
    family("libvirt_domain_memory_stats_rss_bytes", "gauge")
    for vm, h in exported:
        lab = _labels(domain=vm.domain, instance=f"{h}:9177", job="libvirt")
        rss = vm.rss if vm.rss_override is None else vm.rss_override
        out.extend(
            f"libvirt_domain_memory_stats_rss_bytes{lab} {_num(rss)} {t}" for t in _times(END + FUTURE)
        )
    out.append("# EOF")
    return "\n".join(out) + "\n"


def shifted(text: str, seconds: int) -> str:
    """The same history ``seconds`` later (``END`` moved to ``END + seconds``), e.g. to end near now."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            out.append(line)
        else:
            head, _, t = line.rpartition(" ")
            out.append(f"{head} {int(t) + seconds}")
    return "\n".join(out) + "\n"


def from_servers(
    servers: Iterable[dict[str, Any]],
    hosts: Sequence[str],
    load: Callable[[int, int], tuple[float, float]],
    others: int,
) -> Truth:
    """Exporter truth for Nova servers (as ``/servers/detail`` lists them) on ``hosts``.

    Host ``k`` with ``n`` servers is ``load(k, n)`` busy/used (16 CPUs, 64 GiB);
    each server is ``1 / (n + others)`` of its host's load, the rest is the
    host's own. Servers on other hosts export nothing.
    """
    t = Truth()
    on: dict[str, list[dict[str, Any]]] = {h: [] for h in hosts}
    for s in servers:
        on.get(s["OS-EXT-SRV-ATTR:host"], []).append(s)
    for k, host in enumerate(hosts):
        n = len(on[host])
        cpu, mem = load(k, n)
        h = t.hosts[host] = Host(host, 16, 64 * GIB, cpu, mem, (f"{host}:9100",))
        for s in on[host]:
            share = 1.0 / (n + others)
            t.vms[s["id"]] = VM(
                s["id"],
                s["name"],
                s["OS-EXT-SRV-ATTR:instance_name"],
                host,
                cores=h.cpu * h.cpus * share,
                rss=h.mem * h.mem_total * share,
            )
    return t


#: the history tests' grid: ``[engine] history_window`` and ``history_step`` at their defaults
WINDOW = 30 * 60
GRID = 60
#: a load over the window: its value at grid sample ``k`` (0 = ``END - WINDOW``, 30 = ``END``);
#: None: the exporter sent nothing then
Shape = Callable[[int], float | None]


def shaped(hosts: dict[str, Shape], vms: dict[str, Shape]) -> str:
    """Gauges ``kronos_test_host_load{nodename}`` and ``kronos_test_vm_share{instance_id}`` as OpenMetrics.

    Each shape's value for sample ``k`` is written at that sample's time and
    30 s later (a 30 s scrape), from ten samples before the window to its
    end, so a range query at the 60 s grid reads exactly ``shape(k)``, and a
    run of ``None`` is a scrape gap: Prometheus keeps showing the last point
    for its 5-minute lookback, then nothing.
    """
    out: list[str] = []
    for metric, label, shapes in (
        ("kronos_test_host_load", "nodename", hosts),
        ("kronos_test_vm_share", "instance_id", vms),
    ):
        out.append(f"# TYPE {metric} gauge")
        for key, shape in shapes.items():
            lab = _labels(**{label: key})
            for k in range(-10, WINDOW // GRID + 1):
                value = shape(k)
                if value is not None:
                    t = END - WINDOW + k * GRID
                    out.extend(f"{metric}{lab} {_num(value)} {t + dt}" for dt in (0, GRID // 2))
    out.append("# EOF")
    return "\n".join(out) + "\n"
