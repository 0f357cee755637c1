"""Whether a pid recorded in a run folder is still *that* process: identity by more than the pid.

A pid in launcher.json or run.json may belong to somebody else by the time it is read (the run ended,
the machine rebooted, the pid was reused). Before the studio re-attaches to a process or signals it, the
process must be proven to be the one recorded: its start time (Linux: /proc/PID/stat field 22, ticks
since boot, with the boot id; elsewhere psutil's create_time when psutil is installed, else `ps -o
lstart`) and its command line must match what was recorded when it was launched. What cannot be proven is treated as not ours.
Stdlib only (the detached launcher imports it), no Qt.
"""

from __future__ import annotations

import os
import subprocess
import time

PID_MAX = 1 << 22  # Linux's largest pid_max; a bigger "pid" is corrupt, and os.kill would overflow


def valid_pid(value: object) -> int | None:
    """`value` as a pid if it is a plausible one (an int, not a bool, in 1..PID_MAX), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= PID_MAX:
        return None
    return value


def pid_alive(pid: object) -> bool:
    """Whether a process with this id exists (and is not a zombie). Says nothing about whose it is."""
    pid = valid_pid(pid)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError):
        return False
    state = _stat_fields(pid)
    return state is None or state[0] != "Z"  # a zombie is dead for our purposes


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (field 3 onwards), None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _cmdline(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return [part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0")[:-1]] or None


def fingerprint(pid: object) -> dict | None:
    """What identifies the running process `pid`: {"start_ticks", "boot_id", "cmdline"} on Linux,
    {"create_time", "cmdline"} through psutil elsewhere; None when it is gone or nothing is known."""
    pid = valid_pid(pid)
    if pid is None or not pid_alive(pid):
        return None
    fields = _stat_fields(pid)
    if fields is not None and len(fields) > 19:
        try:
            return {"start_ticks": int(fields[19]), "boot_id": _boot_id(), "cmdline": _cmdline(pid)}
        except ValueError:
            return None
    try:
        import psutil  # optional: only where there is no /proc
    except ImportError:
        return _ps_fingerprint(pid)
    try:
        proc = psutil.Process(pid)
        return {"create_time": proc.create_time(), "cmdline": proc.cmdline() or None}
    except Exception:  # noqa: BLE001 (psutil's NoSuchProcess, AccessDenied, ...)
        return None


def _ps_fingerprint(pid: int) -> dict | None:
    """The start time `ps` reports (to the second; macOS and the BSDs without psutil)."""
    try:
        done = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True,
                              timeout=5, env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/bin:/usr/bin")})
    except (OSError, subprocess.SubprocessError):
        return None
    start = done.stdout.strip()
    return {"lstart": start} if done.returncode == 0 and start else None


START_KEYS = ("start_ticks", "create_time", "lstart")


def same_start(recorded: object, now: object) -> bool:
    """Whether two fingerprints name the same process: an equal start time (at least one kind of it
    known to both) and an equal boot id and command line wherever both are known."""
    if not isinstance(recorded, dict) or not isinstance(now, dict):
        return False
    proved = False
    for key in START_KEYS:
        if key in recorded and key in now:
            if recorded[key] != now[key]:
                return False
            proved = True
    for key in ("boot_id", "cmdline"):
        if recorded.get(key) is not None and now.get(key) is not None and recorded[key] != now[key]:
            return False
    return proved


def same_process(pid: object, recorded: object) -> bool:
    """Whether `pid` is running and is the process `recorded` (a fingerprint() taken at launch)."""
    return isinstance(recorded, dict) and same_start(recorded, fingerprint(pid))


def runs_command(pid: object, argv_tail: object, exact: bool = False) -> bool:
    """Whether `pid` is running with a command line that ends with (`exact`: is) `argv_tail`, a list of
    strings: the proof for a process whose start time was not recorded."""
    if not isinstance(argv_tail, list) or not argv_tail or not all(isinstance(a, str) for a in argv_tail):
        return False
    now = fingerprint(pid)
    cmdline = now.get("cmdline") if now else None
    if not cmdline or len(cmdline) < len(argv_tail) or (exact and len(cmdline) != len(argv_tail)):
        return False
    return cmdline[-len(argv_tail):] == argv_tail


def _start_epoch(pid: int) -> float | None:
    """When `pid` started, in seconds since the epoch (None when unknown)."""
    fp = fingerprint(pid)
    if fp is None:
        return None
    if "create_time" in fp:
        return float(fp["create_time"])
    if "lstart" in fp:
        try:
            return time.mktime(time.strptime(fp["lstart"], "%a %b %d %H:%M:%S %Y"))
        except (ValueError, OverflowError):
            return None
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
        return btime + fp["start_ticks"] / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration, KeyError):
        return None


def started_by(pid: object, when: float, slack_s: float = 2.0) -> bool:
    """Whether `pid` is running and was started no later than `when` (a time it recorded about itself):
    a process started afterwards cannot be the one that wrote it."""
    pid = valid_pid(pid)
    start = _start_epoch(pid) if pid is not None else None
    return start is not None and start <= when + slack_s


def lock_holders(path: str) -> set[int] | None:
    """Pids holding a flock/POSIX lock on `path` (the engine's RUN_DIR/.lock while it trains), read from
    Linux's /proc/locks without touching the lock; None where that cannot be known."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = set()
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a waiter ("1: -> FLOCK ..."), not a holder
            continue
        if len(fields) >= 6 and fields[5] == device and fields[4].isdigit():
            holders.add(int(fields[4]))
    return holders
