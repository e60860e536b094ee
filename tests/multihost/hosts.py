"""Hosts on one machine: each a network namespace with its own address, joined to the others
by a veth pair on one bridge, as machines on one switch.

Every process of a host runs inside its namespace (`Host.spawn`), so a host can be killed
(every process of the namespace, SIGKILL), paused (SIGSTOP to all of them) and cut off
(`nemesis.py`, nftables inside the namespace). `teardown` removes every namespace and the
bridge by their names, so it also cleans up after a run that died half-way.
"""

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "of-"  # every namespace the lab makes: `teardown` removes them all by this
BRIDGE = "of-br"
VETH = "ofv-"  # the host side of each veth pair: VETH + host name
SUBNET = "10.77.0"
CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class Process:
    """How to start one of a host's processes (again, after the host was killed)."""

    name: str
    argv: tuple[str, ...]
    user: str | None = None  # run as this user (PostgreSQL refuses root)
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class Host:
    name: str  # "api1", "db2"...; the namespace is PREFIX + name
    last_octet: int
    role: str  # "client", "api", "redis", "db"
    processes: list[Process] = field(default_factory=list)
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def ns(self) -> str:
        return PREFIX + self.name

    @property
    def ip(self) -> str:
        return f"{SUBNET}.{self.last_octet}"

    def run(
        self, *argv: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A short command inside the host (`nft`, `ip`), waited for."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
        )

    def spawn(self, process: Process, logs: Path) -> subprocess.Popen[bytes]:
        """Start `process` inside the host, its output appended to logs/<host>-<name>.log."""
        argv = ["ip", "netns", "exec", self.ns]
        if process.user:
            argv += ["runuser", "-u", process.user, "--"]
        log = open(logs / f"{self.name}-{process.name}.log", "ab")  # noqa: SIM115 (the child's)
        env = dict(os.environ) | dict(process.env)
        proc = subprocess.Popen(
            [*argv, *process.argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        self.running[process.name] = proc
        return proc

    def start(self, logs: Path) -> None:
        for process in self.processes:
            self.spawn(process, logs)

    def pids(self) -> list[int]:
        """Every process inside the namespace (children of children included)."""
        done = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True)
        return [int(p) for p in done.stdout.split()]

    def signal_all(self, sig: signal.Signals) -> None:
        for pid in self.pids():
            if pid == os.getpid():  # the suite itself lives in the client host
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill(self) -> None:
        """Every process of the host at once, SIGKILL: a machine losing power."""
        for _ in range(20):  # a process may fork while we kill (runuser, PostgreSQL)
            if not set(self.pids()) - {os.getpid()}:
                break
            self.signal_all(signal.SIGKILL)
            time.sleep(0.05)
        for proc in self.running.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        self.running.clear()

    def pause(self, paused: bool) -> None:
        """SIGSTOP (or SIGCONT) every process of the host: a machine that hangs."""
        self.signal_all(signal.SIGSTOP if paused else signal.SIGCONT)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done


def build(hosts: list[Host]) -> None:
    """The bridge, and each host's namespace with its end of a veth pair on it."""
    teardown()
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "link", "set", BRIDGE, "up")
    for host in hosts:
        outside = VETH + host.name
        sh("ip", "netns", "add", host.ns)
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", host.ns)
        sh("ip", "link", "set", outside, "master", BRIDGE, "up")
        sh("ip", "-n", host.ns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
        sh("ip", "-n", host.ns, "link", "set", "eth0", "up")
        sh("ip", "-n", host.ns, "link", "set", "lo", "up")


def teardown() -> None:
    """Kill every process of every lab namespace, delete the namespaces and the bridge."""
    names = sh("ip", "netns", "list", check=False).stdout.split()
    lab = [n for n in names if n.startswith(PREFIX)]
    for ns in lab:
        host = Host(ns.removeprefix(PREFIX), 0, "")
        host.signal_all(signal.SIGCONT)  # a paused process would not die of SIGKILL's cleanup
        host.kill()
    for ns in lab:
        sh("ip", "netns", "del", ns, check=False)
    # A veth goes with its namespace, but not at once (nor while a process still holds it):
    # a lab built again right after would find the name taken.
    for link in json.loads(sh("ip", "-j", "link", "show", check=False).stdout or "[]"):
        if link["ifname"].startswith(VETH) or link["ifname"] == BRIDGE:
            sh("ip", "link", "del", link["ifname"], check=False)


def enter(host: Host) -> None:
    """Move this process into `host`'s network: its sockets from now on are the host's (the
    load and the checks run from the client host)."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/var/run/netns/{host.ns}") as ns:
        if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {host.ns}")
