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
import functools
import os
import shutil
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from orderflow.kit.embedded import free_port
from perf.bench.data import data_root, servers
from perf.bench.loadgen import LoadWorker
from perf.bench.reads import KINDS, Bench, Spec, key_sequence, row_of, server_env
from perf.common import (
    ROOT,
    data_arguments,
    healthy,
    log,
    pin_cpus,
    run_unwinding,
    wait_until,
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


class App:
    """One tree's bench app, run by that tree's own Python."""

    def __init__(
        self, tree: Path, env: dict[str, str], port: int, cpu: int | None, log_path: Path
    ) -> None:
        env = env | {"PYTHONPATH": str(tree)}
        args = ["-m", "perf.bench.app", "--port", str(port)]
        args += ["--cpu", str(cpu)] if cpu is not None else []
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(tree / ".venv" / "bin" / "python"), *args],
                cwd=tree,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.name = f"the bench app of {tree}"

    def __str__(self) -> str:
        return self.name

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def redis_database(url: str, db: int) -> str:
    """`url` (redis://host:port, maybe with a database) naming database `db`."""
    head, _, tail = url.partition("://")
    return f"{head}://{tail.split('/')[0]}/{db}"


def measure(benches: dict[str, Bench], kind: str, rounds: int) -> dict[str, Any]:
    sequence: list[str] = []
    for bench in benches.values():
        keys = bench.http.get(f"/bench/keys/{kind}").raise_for_status().json()["keys"]
        bench.http.post(f"/bench/warm/{kind}").raise_for_status()
        sequence = sequence or key_sequence(kind, keys, bench.args.zipf)
    names = list(benches)
    taken: dict[str, list[Any]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % 2 :] + names[: r % 2]:
            taken[name].append(benches[name].slice(kind, Spec(name, "ours"), sequence, rounds))
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
            port = free_port()
            app_log = data_root(args.data_dir, args.orders) / f"bench-app-versus-{name}.log"
            app = App(tree, env, port, server_cpu, app_log)
            stack.callback(app.stop)
            up = functools.partial(healthy, f"http://127.0.0.1:{port}")
            wait_until(up, str(app), children=[app])  # type: ignore[list-item]
            benches[name] = bench = Bench(args, port, app, load)  # type: ignore[arg-type]
            stack.callback(bench.http.close)
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
