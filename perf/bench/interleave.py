"""Several bench apps measured side by side: each on the same core and servers, the load
turning from one to the next in slices, the order rotating each round. Used where the gap to
show is smaller than the scatter of runs made one after the other on a shared machine:
tracing settings (`perf.bench.tracing_cost`), two commits (`perf.bench.versus`)."""

from __future__ import annotations

import argparse
import functools
import statistics
from contextlib import ExitStack
from pathlib import Path

from orderflow.kit.embedded import free_port
from perf.bench.data import data_root
from perf.bench.loadgen import LoadWorker
from perf.bench.reads import Bench, Slice, Spec, key_sequence
from perf.common import ROOT, Child, healthy, log, wait_until


def start_bench_app(
    stack: ExitStack,
    env: dict[str, str],
    label: str,
    args: argparse.Namespace,
    cpu: int | None,
    load: LoadWorker,
    root: Path = ROOT,
) -> Bench:
    """`perf.bench.app` of the tree at `root` (its own virtualenv), stopped with `stack`."""
    port = free_port()
    app_log = data_root(args.data_dir, args.orders) / f"bench-app-{label}.log"
    log(f"starting the bench app {label} on :{port} (core {cpu}, log {app_log})")
    app_args = ["--port", str(port), *(["--cpu", str(cpu)] if cpu is not None else [])]
    server = Child("perf.bench.app", app_args, env, app_log, root=root)
    stack.callback(server.stop)
    up = functools.partial(healthy, f"http://127.0.0.1:{port}")
    wait_until(up, f"the bench app {label}", children=[server])
    bench = Bench(args, port, server, load)
    stack.callback(bench.http.close)
    return bench


def slices(benches: dict[str, Bench], kind: str, rounds: int) -> dict[str, list[Slice]]:
    """Each bench's slices of `kind` (hits of the platform's read path, `ours`), warmed first,
    on one key sequence; `rounds` slices each, the order rotating each round."""
    sequence: list[str] = []
    for bench in benches.values():  # each server warms its own near copies
        keys = bench.http.get(f"/bench/keys/{kind}").raise_for_status().json()["keys"]
        bench.http.post(f"/bench/warm/{kind}").raise_for_status()
        sequence = sequence or key_sequence(kind, keys, bench.args.zipf)
    names = list(benches)
    taken: dict[str, list[Slice]] = {name: [] for name in names}
    for r in range(rounds):
        for name in rotation(names, r):
            taken[name].append(benches[name].slice(kind, Spec(name, "ours"), sequence, rounds))
    return taken


def rotation(names: list[str], r: int) -> list[str]:
    """The order of round `r`: each name goes first in turn."""
    return names[r % len(names) :] + names[: r % len(names)]


def paired(values: list[float], first: list[float]) -> dict[str, float]:
    """`values` over `first`, round by round (the slices of one round run within seconds of
    each other, so a neighbour's burst that lasts a round cancels out): the median and
    quartiles of the rounds' ratios."""
    ratios = sorted(a / b for a, b in zip(values, first, strict=True) if b)
    if len(ratios) < 2:
        return {"median": ratios[0] if ratios else 0.0, "q1": 0.0, "q3": 0.0}
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return {"median": statistics.median(ratios), "q1": q1, "q3": q3}
