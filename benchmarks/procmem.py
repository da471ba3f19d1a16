"""Run a command and report its wall time and the peak resident memory of its whole process tree."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PAGE_KIB = 4


@dataclass(frozen=True)
class Run:
    """Result of one measured command."""

    wall_s: float
    peak_rss_mib: float
    returncode: int


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids.extend(int(k) for k in task.read_text().split())
        except OSError:
            continue
    return kids


def _tree_rss_kib(root: int) -> int:
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            fields = Path(f"/proc/{pid}/statm").read_text().split()
        except OSError:
            continue
        total += int(fields[1]) * PAGE_KIB
        stack.extend(_children(pid))
    return total


def measure(cmd: Sequence[str], cwd: Path, env: Mapping[str, str], interval_s: float = 0.02) -> Run:
    """Run ``cmd``; sample the RSS of its process tree every ``interval_s`` seconds."""
    peak = 0
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            time.sleep(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    return Run(wall_s=wall, peak_rss_mib=peak / 1024, returncode=proc.returncode)
