"""System metrics of a training run: CPU and resident memory of its process tree (the engine, or
torchrun and its workers) from /proc, and the GPUs' utilisation, memory and temperature from nvidia-smi
when there is one.

Qt-free; studio.controllers.system samples these on a timer while the run trains.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
GPU_QUERY = "utilization.gpu,memory.used,memory.total,temperature.gpu"


def _stat_fields(pid: int, proc: str = "/proc") -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3, the state, is index 0)."""
    try:
        with open(f"{proc}/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(pid: int, proc: str = "/proc") -> list[int]:
    """`pid` and all its descendants that exist now. Walks /proc/PID/task/*/children (Linux >= 3.5 with
    CONFIG_PROC_CHILDREN, as on the common distributions): a few files per process of the tree, instead of
    the stat file of every process on the machine, which is the fallback where that file is missing."""
    if not os.path.isdir(f"{proc}/{pid}"):
        return []
    if _children(pid, proc) is None:
        return _process_tree_by_scan(pid, proc)
    return _walk(pid, lambda p: _children(p, proc) or [])


def _walk(pid: int, children) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def _process_tree_by_scan(pid: int, proc: str) -> list[int]:
    """The same from every process's parent pid (/proc/PID/stat)."""
    scanned = _scan_children(proc)
    return _walk(pid, lambda p: scanned.get(p, [])) if os.path.isdir(f"{proc}/{pid}") else []


def _children(pid: int, proc: str) -> list[int] | None:
    """Children of `pid` from its threads' `children` files; None where the kernel has no such file."""
    try:
        tasks = os.listdir(f"{proc}/{pid}/task")
    except OSError:
        return []  # gone meanwhile
    kids: list[int] = []
    for t in tasks:
        try:
            with open(f"{proc}/{pid}/task/{t}/children", encoding="ascii") as fh:
                kids.extend(int(c) for c in fh.read().split())
        except FileNotFoundError:
            if not os.path.isdir(f"{proc}/{pid}/task/{t}"):
                continue  # the thread ended meanwhile
            return None
        except (OSError, ValueError):
            continue
    return kids


def _scan_children(proc: str) -> dict[int, list[int]]:
    """Every process's children, from the parent pid in each /proc/PID/stat."""
    children: dict[int, list[int]] = {}
    try:
        entries = [int(e) for e in os.listdir(proc) if e.isdigit()]
    except OSError:
        return children
    for p in entries:
        fields = _stat_fields(p, proc)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(p)
    return children


def cpu_seconds(pid: int, proc: str = "/proc") -> float:
    """User + system CPU time of one process (0 when it is gone)."""
    fields = _stat_fields(pid, proc)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK if fields else 0.0


def rss_bytes(pid: int, proc: str = "/proc") -> int:
    """Resident memory of one process (statm's second field, in pages)."""
    try:
        with open(f"{proc}/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class ProcessSampler:
    """CPU % (100 = one core busy) and RSS of a process tree between successive calls."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._last: tuple[float, dict[int, float]] | None = None

    def sample(self, pid: int, now: float | None = None) -> dict | None:
        now = time.monotonic() if now is None else now
        pids = process_tree(pid, self.proc) if pid > 0 else []
        if not pids:
            self._last = None
            return None
        cpu = {p: cpu_seconds(p, self.proc) for p in pids}
        rss = sum(rss_bytes(p, self.proc) for p in pids)
        percent = float("nan")
        if self._last is not None and now > self._last[0]:
            before = self._last[1]
            # a process born since the last sample counts all its CPU time (it started after it)
            used = sum(max(0.0, t - before.get(p, 0.0)) for p, t in cpu.items())
            percent = 100.0 * used / (now - self._last[0])
        self._last = (now, cpu)
        return {"cpu_percent": percent, "rss_mb": rss / 2**20, "processes": len(pids)}


def parse_nvidia_smi(text: str) -> list[dict]:
    """Rows of `nvidia-smi --query-gpu=GPU_QUERY --format=csv,noheader,nounits`."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        try:
            util, used, total, temp = (float(p) for p in parts)
        except ValueError:
            continue  # "[N/A]" on some boards
        gpus.append({"util_percent": util, "mem_used_mb": used, "mem_total_mb": total, "temp_c": temp})
    return gpus


def nvidia_smi_command() -> list[str] | None:
    """The nvidia-smi query (program and arguments), or None when there is no nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    return [exe, f"--query-gpu={GPU_QUERY}", "--format=csv,noheader,nounits"] if exe else None


def gpu_sample(timeout: float = 2.0) -> list[dict] | None:
    """Every GPU's figures, or None when there is no nvidia-smi (or it fails). Blocks up to `timeout`:
    for scripts; the studio queries asynchronously (studio.controllers.system.GpuQuery)."""
    cmd = nvidia_smi_command()
    if cmd is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(out.stdout) if out.returncode == 0 else None
