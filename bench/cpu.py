"""Where the machine's CPU went while a row ran, per request.

Read from ``/proc`` before and after the measured wrk run: the server's process tree
(exact), wrk (exact: the runner's waited-for children), the PostgreSQL backends of the
server's own connections (exact), ``redis-server`` (shared: other users' commands count
too), and the rest of the machine's busy time ("other": everybody else, e.g. test suites
running beside the bench). ``steal`` is time the hypervisor gave our vCPUs to someone
else. Linux only; elsewhere ``CpuMeter`` measures nothing and the report leaves it out.
"""

from __future__ import annotations

import os
import resource
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

_PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds of each group over ``wall`` seconds on ``cores`` cores."""

    wall: float
    cores: int
    server: float
    wrk: float
    postgres: float
    redis: float
    other: float
    steal: float

    def per_request_ms(self, requests: int) -> dict[str, float]:
        if not requests:
            return {}
        return {name: getattr(self, name) * 1000 / requests
                for name in ("server", "postgres", "redis", "wrk", "other")}

    @property
    def busy_share(self) -> float:
        used = self.server + self.wrk + self.postgres + self.redis + self.other
        return used / (self.wall * self.cores) if self.wall else 0.0

    @property
    def steal_share(self) -> float:
        return self.steal / (self.wall * self.cores) if self.wall else 0.0


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, utime + stime ticks, command name) of a process, or None if gone."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is the state (field 3 of proc(5)); ppid is field 4, utime 14, stime 15
    return int(fields[1]), int(fields[11]) + int(fields[12]), name


def _processes() -> dict[int, tuple[int, int, str]]:
    found = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                found[int(entry.name)] = stat
    return found


def _machine() -> tuple[int, int, int]:
    """(total, idle + iowait, steal) ticks of all CPUs, from the first line of /proc/stat;
    total counts all three, so it is wall time times cores."""
    values = [int(v) for v in (_PROC / "stat").read_text().splitlines()[0].split()[1:]]
    steal = values[7] if len(values) > 7 else 0
    # guest time is already counted in user time
    return sum(values[:8]), values[3] + values[4], steal


@dataclass(frozen=True)
class _Snapshot:
    # ticks by pid of each group
    groups: dict[str, dict[int, int]]
    children: float
    total: int
    idle: int
    steal: int


def _delta(end: dict[int, int], start: dict[int, int]) -> float:
    """CPU seconds between two readings by pid: a process first seen after the start
    counts whole; one last seen before the end counts up to its last reading."""
    return sum(ticks - start.get(pid, 0) for pid, ticks in end.items()) / _TICK


class CpuMeter:
    """``start()`` before the wrk run, ``stop()`` after: a ``CpuUse`` (None off Linux).

    ``postgres_pids`` names the PostgreSQL backends serving the server (bench/run.py finds
    them by their ``application_name``). Processes come and go during a run (a connection
    pool that overflows opens and closes backends), so a thread reads every group's
    processes every ``interval`` seconds and keeps each one's last reading.
    """

    GROUPS = ("server", "postgres", "redis")

    def __init__(self, server_pid: int, cores: int, postgres_pids: Callable[[], set[int]],
                 interval: float = 0.25):
        self.server_pid = server_pid
        self.cores = cores
        self.postgres_pids = postgres_pids
        self.interval = interval
        self.enabled = (_PROC / "stat").exists()
        self._start: _Snapshot | None = None
        self._last: dict[str, dict[int, int]] = {group: {} for group in self.GROUPS}
        self._stopping = threading.Event()
        self._sampler: threading.Thread | None = None

    def _groups(self) -> dict[str, dict[int, int]]:
        ours = self.postgres_pids()
        processes = _processes()
        tree, changed = {self.server_pid}, True
        while changed:
            changed = False
            for pid, (ppid, _, _) in processes.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    changed = True

        def ticks(match) -> dict[int, int]:
            return {pid: t for pid, (_, t, name) in processes.items() if match(pid, name)}

        return {"server": ticks(lambda pid, name: pid in tree),
                "postgres": ticks(lambda pid, name: pid in ours),
                "redis": ticks(lambda pid, name: name.startswith("redis-server"))}

    def _sample(self) -> None:
        for group, ticks in self._groups().items():
            self._last[group].update(ticks)

    def _snapshot(self) -> _Snapshot:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        total, idle, steal = _machine()
        return _Snapshot(groups=self._groups(), children=usage.ru_utime + usage.ru_stime,
                         total=total, idle=idle, steal=steal)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self._sample()

    def start(self) -> None:
        if not self.enabled:
            return
        self._start = self._snapshot()
        self._sampler = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self._sampler.start()

    def stop(self) -> CpuUse | None:
        if self._start is None:
            return None
        self._stopping.set()
        assert self._sampler is not None
        self._sampler.join()
        end, start = self._snapshot(), self._start
        for group, ticks in end.groups.items():
            self._last[group].update(ticks)
        used = {group: _delta(self._last[group], start.groups[group]) for group in self.GROUPS}
        steal = (end.steal - start.steal) / _TICK
        busy = ((end.total - end.idle) - (start.total - start.idle)) / _TICK - steal
        wrk = end.children - start.children
        wall = (end.total - start.total) / _TICK / self.cores
        other = max(0.0, busy - sum(used.values()) - wrk)
        return CpuUse(wall=wall, cores=self.cores, server=used["server"], wrk=wrk,
                      postgres=used["postgres"], redis=used["redis"], other=other, steal=steal)
