"""Process-group plumbing for the local stack: spawn in a new session, find, probe and stop every member."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class Spawned:
    """A process started as the leader of its own session (so its session id equals its pid).

    Attributes:
        pid: the leader's pid (= its process-group id and session id).
        start_ticks: the leader's start time in clock ticks since boot, to detect pid reuse.
        boot_id: the kernel boot id at spawn time; a different boot means the record is stale.
    """

    pid: int
    start_ticks: int
    boot_id: str


def boot_id() -> str:
    """The current kernel boot id (empty string where /proc does not expose it)."""
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state), or None if gone."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is parenthesised and may itself contain spaces or parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if the process is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def session_members(sid: int) -> list[int]:
    """Pids of every live (non-zombie) process whose session id is ``sid``."""
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def owned_members(record: Spawned) -> list[int]:
    """Live processes of a recorded session, or [] when the record is stale (other boot, pid reused).

    The kernel keeps a pid number allocated while any process still uses it as a session id, so members found
    under the recorded sid belong to that session unless the leader pid now names a different process.
    """
    if record.boot_id and record.boot_id != boot_id():
        return []
    leader_ticks = start_ticks(record.pid)
    if leader_ticks is not None and leader_ticks != record.start_ticks:
        return []
    return session_members(record.pid)


def spawn(cmd: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path) -> Spawned:
    """Start ``cmd`` detached in a new session, stdout and stderr appended to ``log_path``.

    Raises:
        OSError: the executable cannot be started.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Spawned(pid=proc.pid, start_ticks=start_ticks(proc.pid) or 0, boot_id=boot_id())


def _signal_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_session(record: Spawned, grace_s: float = 15.0) -> list[int]:
    """SIGTERM every process of the recorded session, wait up to ``grace_s``, then SIGKILL the rest.

    Returns:
        The pids that were still alive when we began (empty if nothing of the session was running).
    """
    members = owned_members(record)
    if not members:
        return []
    _signal_all(members, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not owned_members(record):
            return members
        time.sleep(0.2)
    # Children that re-grouped themselves still carry the session id, so sweep by session, not by group.
    for _ in range(3):
        left = owned_members(record)
        if not left:
            break
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.3)
        _reap(record.pid)
    return members


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident memory summed over ``pids`` (VmRSS from /proc; processes that vanished count zero)."""
    total = 0
    for pid in pids:
        try:
            for line in (_PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS says is free on ``host`` right now (for helper listeners nobody connects to by number)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """Whether GET ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - loopback URLs we built
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
