"""The cached read path of this tree against an earlier commit's, side by side in one run.

Alternating `make bench` runs of two trees on a shared machine scatter by 10-30 %: more than
the 5 % a change must not lose. Here both trees' bench apps (`perf.bench.app`, each built by its
own tree's code in its own virtualenv) run at once, pinned to the same core, on the same
PostgreSQL and the same Redis server (each in its own Redis database, so their keys never
meet), and the load turns from one to the other in slices, the order alternating each round,
as `perf.bench.tracing_cost` does for tracing settings.

    uv run --frozen python -m perf.bench.versus --base 4dd1de5          # item, orders, counts
    uv run --frozen python -m perf.bench.versus --base HEAD~3 --kinds counts --rounds 8

The base commit is checked out as a git worktree under `--data-dir` (with `uv sync --frozen`)
and kept there for the next run. Only the `ours` variant is measured: the platform's read path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from perf.bench import interleave
from perf.bench.data import servers
from perf.bench.loadgen import LoadWorker
from perf.bench.reads import KINDS, Bench, Spec, row_of, server_env
from perf.common import (
    ROOT,
    data_arguments,
    log,
    pin_cpus,
    run_unwinding,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="the commit to compare against")
    data_arguments(p, 20_000)
    p.add_argument("--kinds", default="item,orders,counts", help=f"of {', '.join(KINDS)}")
    p.add_argument("--seconds", type=float, default=12.0, help="measured time per tree and kind")
    p.add_argument("--rounds", type=int, default=6, help="slices per tree and kind")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured load per tree and kind")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--zipf", type=float, default=1.0)
    p.add_argument("--quiet-wait", type=float, default=15.0, help="per tree and kind, at most")
    args = p.parse_args(argv)
    if unknown := set(args.kinds.split(",")) - set(KINDS):
        p.error(f"unknown kinds {sorted(unknown)}: use {', '.join(KINDS)}")
    return args


def worktree(commit: str, data_dir: Path) -> Path:
    """`commit`'s tree with its own virtualenv, made once under `data_dir`."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", commit], cwd=ROOT, capture_output=True, text=True
    )
    if sha.returncode != 0:
        raise SystemExit(f"not a commit: {commit} ({sha.stderr.strip()})")
    tree = data_dir.resolve() / f"versus-{sha.stdout.strip()}"
    if not (tree / ".venv").exists():
        log(f"checking out {commit} in {tree} and installing its packages")
        if not tree.exists():
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True
            )
        uv = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
        subprocess.run([uv, "sync", "--frozen", "--quiet"], cwd=tree, check=True)
    return tree


def redis_database(url: str, db: int) -> str:
    """`url` (redis://host:port, maybe with a database) naming database `db`."""
    head, _, tail = url.partition("://")
    return f"{head}://{tail.split('/')[0]}/{db}"


def measure(benches: dict[str, Bench], kind: str, rounds: int) -> dict[str, Any]:
    taken = interleave.slices(benches, kind, rounds)
    names = list(benches)
    rows = {n: row_of(kind, Spec(n, "ours"), taken[n]) for n in names}
    slices = {n: [round(s.result.rps) for s in taken[n]] for n in names}
    ratio = rows["this"]["rps"] / rows["base"]["rps"]
    medians = statistics.median(slices["this"]) / statistics.median(slices["base"])
    log(
        f"  {kind:<7} base {rows['base']['rps']:>7,.0f}  this {rows['this']['rps']:>7,.0f} req/s"
        f"  x{ratio:.3f} (slice medians x{medians:.3f})"
        f"  slices base {slices['base']} this {slices['this']}  load {os.getloadavg()[0]:.2f}"
    )
    return {"rps": {n: rows[n]["rps"] for n in names}, "ratio": ratio, "slices": slices}


def run(args: argparse.Namespace) -> dict[str, Any]:
    base = worktree(args.base, args.data_dir)
    server_cpu, load_cpu = pin_cpus()
    results: dict[str, Any] = {"base": args.base, "kinds": {}}
    with ExitStack() as stack:
        live = stack.enter_context(servers(args.data_dir, args.orders, reseed=args.reseed))
        load = LoadWorker(load_cpu)
        stack.callback(load.close)
        benches: dict[str, Bench] = {}
        for db, (name, tree) in enumerate((("this", ROOT), ("base", base))):
            env = server_env(live) | {"ORDERFLOW_REDIS_URL": redis_database(live.redis_url, db)}
            label = f"versus-{name}"
            benches[name] = interleave.start_bench_app(
                stack, env, label, args, server_cpu, load, tree
            )
        for kind in args.kinds.split(","):
            log(f"{kind}: this tree / {args.base}, {args.rounds} rounds")
            results["kinds"][kind] = measure(benches, kind, args.rounds)
    return results


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    results, _ = run_unwinding(run, args)
    print(f"| kind | {args.base} req/s | this tree req/s | this / {args.base} |")
    print("|---|---|---|---|")
    for kind, found in results["kinds"].items():
        rps = found["rps"]
        print(f"| {kind} | {rps['base']:,.0f} | {rps['this']:,.0f} | {found['ratio']:.3f} |")


if __name__ == "__main__":
    main()
