"""The lab of several hosts on this machine (root on Linux).

python -m tests.multihost up       # build the hosts, start everything, show the hosts table
python -m tests.multihost down     # stop everything, remove the hosts: nothing left behind
python -m tests.multihost run      # up, the nemesis under load, the checks, down (make multihost)
"""

import argparse
import os
import platform
import shutil
import sys
import time

from tests.multihost import database, hosts
from tests.multihost.lab import Lab

NEEDS = ("ip", "nft", "etcd", "haproxy")

T0 = time.monotonic()


def log(what: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {what}", file=sys.stderr, flush=True)


def why_not() -> str | None:
    """Why the lab cannot run here, in one line; None when it can."""
    if platform.system() != "Linux":
        return "the multi-host lab needs Linux network namespaces; this is " + platform.system()
    if os.geteuid() != 0:
        return "the multi-host lab builds network namespaces and nftables rules: run it as root"
    missing = [tool for tool in NEEDS if shutil.which(tool) is None]
    missing += [] if database.PATRONI.exists() else [str(database.PATRONI)]
    if missing:
        return f"missing {', '.join(missing)}: `make multihost-tools` installs them (root, Debian)"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the lab and leave it running")
    sub.add_parser("down", help="stop the lab and remove its hosts")
    run = sub.add_parser("run", help="the nemesis under load, then the checks")
    run.add_argument("--rounds", type=int, default=2, help="times each fault is injected")
    run.add_argument("--only", metavar="WORD", help="only the faults whose name holds WORD")
    run.add_argument("--skip", metavar="WORD", help="not the faults whose name holds WORD")
    args = parser.parse_args()
    if (reason := why_not()) is not None:
        print(reason, file=sys.stderr)
        raise SystemExit(2)
    if args.command == "down":
        hosts.teardown()
        shutil.rmtree(Lab().root, ignore_errors=True)
        log("lab removed")
        return
    lab = Lab()
    if args.command == "up":
        try:
            lab.up(log)
        except BaseException:
            lab.down()
            raise
        print(lab.table())
        return
    from tests.multihost.suite import run_suite

    raise SystemExit(run_suite(lab, args.rounds, args.only, log, args.skip))


if __name__ == "__main__":
    main()
