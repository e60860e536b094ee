"""The report's figures, as PNG files (matplotlib, no display)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from perf.loadtest import config as g
from perf.loadtest.results import GroupAtStep, ProbeRow, Run
from perf.loadtest.samples import Summary

COLORS = {"off": "tab:red", "on": "tab:blue"}
KEY_GROUPS = (g.ITEM, g.CATALOGUE, g.OWN_ORDERS, g.PLACE, g.BY_STATUS, g.COUNTS, g.QUEUE, g.CLAIM)
ENTITIES = (
    "item",
    "catalogue_page",
    "client",
    "order",
    "order_view",
    "client_order_view",
    "order_counts",
    "production_order",
    "production_view",
)


PLAIN = FuncFormatter(lambda y, _: f"{y:g}")


def _legend(ax: Axes, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _log_ms(ax: Axes) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: ""))


def _steps(ax: Axes, run: Run, mode: str) -> None:
    for step in run.steps:
        if step.mode == mode:
            ax.axvline(step.start_s, color="grey", lw=0.6, ls=":")
            ax.text(
                step.start_s,
                1.0,
                f" {step.users}u",
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                va="top",
                color="grey",
            )


def latency(run: Run, per_second: dict[tuple[str, int, str], Summary]) -> Figure:
    fig, axes = plt.subplots(1, len(run.options.modes), figsize=(12, 4), sharey=True)
    for ax, mode in zip(list(axes), run.options.modes, strict=True):
        rows = sorted((t, s) for (m, t, grp), s in per_second.items() if m == mode and grp == "all")
        for q, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
            ax.plot([t for t, _ in rows], [getattr(s, q) for _, s in rows], style, label=q)
        ax.axhline(run.options.sla.read_ms, color="black", lw=0.8, label="read SLA p95")
        _steps(ax, run, mode)
        ax.set(title=f"cache {mode}: every request, per second", xlabel="s since warm-up began")
        _log_ms(ax)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("response time, ms")
    _legend(axes[0], fontsize=8)
    return fig


def latency_by_group(run: Run, rows: list[GroupAtStep]) -> Figure:
    fig, axes = plt.subplots(1, len(run.options.modes), figsize=(12, 4.5), sharey=True)
    for ax, mode in zip(list(axes), run.options.modes, strict=True):
        for group in KEY_GROUPS:
            pts = sorted(
                (r.users, r.summary.p95) for r in rows if r.mode == mode and r.group == group
            )
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=group)
        for limit in sorted(
            {run.options.sla.read_ms, run.options.sla.place_ms, run.options.sla.claim_ms}
        ):
            ax.axhline(limit, color="black", lw=0.6, ls="--")
        ax.set(title=f"cache {mode}: p95 per step", xlabel="users")
        _log_ms(ax)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("p95, ms (dashed: SLA targets)")
    _legend(axes[-1], fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def throughput(run: Run, per_second: dict[tuple[str, int, str], Summary]) -> Figure:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True)
    for mode in run.options.modes:
        rows = sorted((t, s) for (m, t, grp), s in per_second.items() if m == mode and grp == "all")
        ts = [t for t, _ in rows]
        top.plot(ts, [s.requests for _, s in rows], color=COLORS[mode], label=f"cache {mode}")
        bottom.plot(ts, [s.failures for _, s in rows], color=COLORS[mode], label=f"cache {mode}")
    top.set(ylabel="requests/s", title="throughput (completed requests per second)")
    bottom.set(ylabel="errors/s", xlabel="s since the mode's warm-up began", title="errors")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        _legend(ax, fontsize=8)
    return fig


def _by_step(
    run: Run, value: Callable[..., float | None], mode: str
) -> tuple[list[int], list[float]]:
    pts = [(s.users, value(s)) for s in run.steps if s.mode == mode]
    return [u for u, v in pts if v is not None], [v for _, v in pts if v is not None]


def hit_ratio(run: Run) -> Figure:
    fig, ax = plt.subplots(figsize=(12, 4))
    for entity in ENTITIES:
        xs, ys = _by_step(run, lambda s, e=entity: s.rates.hit_ratio(e), "on")
        if xs:
            ax.plot(
                xs,
                [100 * y for y in ys],
                marker="o",
                ms=3,
                label=entity,
                lw=2.5 if entity == "item" else 1,
            )
    ax.set(
        title="cache on: hit ratio per entity, (hits + near hits) / reads",
        xlabel="users",
        ylabel="%",
        ylim=(0, 101),
    )
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def queries(run: Run) -> Figure:
    fig, ax = plt.subplots(figsize=(12, 4))
    users = sorted({s.users for s in run.steps})
    width = 0.8 / len(run.options.modes)
    for i, mode in enumerate(run.options.modes):
        by = {s.users: s.rates.queries_per_s["total"] for s in run.steps if s.mode == mode}
        xs = [k + i * width for k in range(len(users))]
        ax.bar(
            xs,
            [by.get(u, math.nan) for u in users],
            width,
            color=COLORS[mode],
            label=f"cache {mode}",
        )
    ax.set_xticks([k + width * (len(run.options.modes) - 1) / 2 for k in range(len(users))])
    ax.set_xticklabels([f"{u} users" for u in users])
    ax.set(title="PostgreSQL statements per second (Shop + CRM + MES), per step", ylabel="q/s")
    ax.grid(alpha=0.3, axis="y")
    _legend(ax, fontsize=8)
    return fig


def probe(run: Run, rows: list[ProbeRow]) -> Figure:
    fig, ax = plt.subplots(figsize=(12, 4.5))
    endpoints = list(dict.fromkeys(r.endpoint for r in rows))
    by = {(r.mode, r.endpoint): r for r in rows}
    slots = [(mode, q) for mode in run.options.modes for q in ("p50", "p95", "p99")]
    width = 0.8 / len(slots)
    for i, (mode, q) in enumerate(slots):
        values = [getattr(by[(mode, e)], q) if (mode, e) in by else math.nan for e in endpoints]
        ax.bar(
            [k + i * width for k in range(len(endpoints))],
            values,
            width,
            color=COLORS[mode],
            alpha={"p50": 0.4, "p95": 0.7, "p99": 1.0}[q],
            label=f"{mode} {q}",
        )
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(endpoints))])
    ax.set_xticklabels([e.replace(" ", "\n", 1) for e in endpoints], fontsize=7)
    _log_ms(ax)
    ax.set(
        ylabel="ms from scheduled send",
        title=f"open-model probe at {run.options.probe_rate:.0f} req/s per endpoint",
    )
    ax.grid(alpha=0.3, axis="y")
    _legend(ax, fontsize=7, ncol=2)
    return fig


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
