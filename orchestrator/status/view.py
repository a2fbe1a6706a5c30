"""How a run's status looks: the text of ``deathmath-orchestrate status`` and the page ``results/status.html``.

Both render ``status.RunStatus`` data and nothing else. The page is static HTML that reloads itself every
``REFRESH_S`` seconds while a run is going (``<meta http-equiv="refresh">``: works from ``file://`` and from any
static file server); a few lines of inline JavaScript only count the age of the last update and warn when it is
older than the run's stale limit (the run may have died: nobody rewrites the page then). Every string from the
run (model names, errors) is HTML-escaped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ..leaderboard.render import DASH, duration, pct
from .file import Liveness, RunStatus, runs_to_show

REFRESH_S = 5
ERROR_CHARS = 70
COLUMNS = (
    "MODEL", "STATE", "GPUS", "PORT", "ANSWERED", "ACC", "TOK/S", "ETA", "RESTARTS", "PLANNED", "ACTUAL", "END",
    "LAST ERROR",
)  # fmt: skip


def clock_time(ts: float | None) -> str:
    """A Unix time as local ``HH:MM``."""
    return DASH if not ts else time.strftime("%H:%M", time.localtime(float(ts)))


def when(ts: float | None) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS TZ``."""
    return DASH if not ts else time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(float(ts)))


def placement(model: Mapping[str, Any]) -> tuple[str, str]:
    """(GPUs, port) of a model: ``0,1`` / ``cpu`` / ``api``, and the port once its server started."""
    if model.get("endpoints"):
        return "api", DASH
    gpus = model.get("gpus")
    if gpus is None:
        return DASH, DASH
    return (",".join(str(g) for g in gpus) or "cpu"), str(model.get("port") or DASH)


def model_cells(model: Mapping[str, Any]) -> list[str]:
    """The table cells of one model as plain text (error not shortened)."""
    gpus, port = placement(model)
    tok_s, eta = model.get("tok_s"), model.get("eta_s")
    return [
        str(model.get("model")),
        str(model.get("state")),
        gpus,
        port,
        f"{model.get('answered', 0)}/{model.get('total', 0)}",
        pct(model.get("accuracy")),
        DASH if tok_s is None else f"{tok_s:.1f}",
        DASH if eta is None or model.get("state") != "running" else duration(eta),
        str(model.get("restarts", 0)),
        DASH if model.get("planned_s") is None else duration(model["planned_s"]),
        DASH if model.get("elapsed_s") is None else duration(model["elapsed_s"]),
        clock_time(model.get("projected_end") or model.get("planned_end")),
        " ".join(str(model.get("last_error") or DASH).split()),
    ]


def plan_line(run: RunStatus) -> str | None:
    """The run's planned and projected end, and the ``--finish-by`` deadline against it; None without a plan."""
    data = run.data
    if data.get("planned_end") is None:
        return None
    line = f"planned end {clock_time(data['planned_end'])}"
    if data.get("projected_end") is not None and data.get("state") == "running":
        line += f", projected end {clock_time(data['projected_end'])}"
    deadline = data.get("finish_by")
    if deadline is not None:
        end = data.get("projected_end") or data["planned_end"]
        verdict = "on time" if end <= deadline else "projected to end after it (nothing is stopped for it)"
        line += f"; --finish-by {clock_time(deadline)}: {verdict}"
    return line


def headline(run: RunStatus, life: Liveness, now: float) -> str:
    """One line: the run, its state and for how long, or how it ended."""
    started = float(run.data.get("started_at") or now)
    updated = float(run.data.get("updated_at") or started)
    if life.state == "ended":
        took = duration(float(run.data.get("ended_at") or updated) - started)
        return (
            f"run {run.run_id} {run.state} with exit code {run.data.get('exit_code')} at "
            f"{when(run.data.get('ended_at'))} after {took}"
        )
    ago = f"last update {when(updated)}, {duration(max(0.0, now - updated))} ago"
    if life.state == "died":
        return f"run {run.run_id} died: {life.reason} ({ago}); rerun the same command to resume from the checkpoints"
    if life.state == "stale":
        return f"run {run.run_id} may have died: {life.reason} ({ago})"
    return (
        f"run {run.run_id} running for {duration(max(0.0, now - started))} on {run.data.get('host')} "
        f"(pid {run.data.get('pid')}); {ago}"
    )


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]


def _short(text: str, limit: int = ERROR_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_text(run: RunStatus, life: Liveness, now: float) -> list[str]:
    """The block of one run: headline, manifest, a line per model."""
    rows = [list(COLUMNS)] + [model_cells(m) for m in run.models]
    for row in rows[1:]:
        row[-1] = _short(row[-1])
    plan = plan_line(run)
    head = [headline(run, life, now), f"  manifest: {run.data.get('manifest')}"] + ([f"  {plan}"] if plan else [])
    return head + ["  " + line for line in _table(rows)]


def render_status_text(runs: Sequence[RunStatus], results_dir: str, now: float | None = None) -> str:
    """What ``status`` prints for the runs found under ``results_dir`` (oldest first)."""
    now = time.time() if now is None else now
    if not runs:
        return f"no run has written a status under {results_dir} yet (no run started since this version)\n"
    live, latest = runs_to_show(runs, now)
    if latest is None:
        blocks = [run_text(run, run.liveness(now), now) for run in live]
        return "\n\n".join("\n".join(block) for block in blocks) + "\n"
    lines = [f"no run is active under {results_dir}; the latest:"] + run_text(latest, latest.liveness(now), now)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- the page

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 6px} .sub{color:#57606a;margin:0 0 12px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums} .wrap{overflow-x:auto;max-width:100%}
th,td{padding:5px 8px;border-bottom:1px solid #d8dee4;text-align:right;white-space:nowrap}
th{background:#f6f8fa} th:first-child,td:first-child,th:last-child{text-align:left}
td.err{text-align:left;white-space:normal;max-width:28em;overflow-wrap:anywhere;color:#9a3412;font-size:12px}
td.model{font-weight:600}
.st{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#eaeef2;color:#24292f}
.st.running{background:#dafbe1;color:#116329} .st.finished{background:#ddf4ff;color:#0550ae}
.st.failed,.st.died{background:#ffebe9;color:#a40e26} .st.starting,.st.downloading{background:#fff8c5;color:#7d4e00}
.st.interrupted,.st.stale{background:#fff1e5;color:#953800}
.bar{display:inline-block;width:80px;height:8px;background:#eaeef2;border-radius:4px;vertical-align:middle;
margin-left:6px;overflow:hidden} .bar i{display:block;height:100%;background:#3b6fb6}
.warn{background:#fff1e5;border:1px solid #ffb77c;padding:8px 10px;border-radius:6px;color:#953800}
.meta{color:#57606a;font-size:12px;margin:2px 0 8px}
"""
SCRIPT = """
(function(){function tick(){var now=Date.now()/1000;document.querySelectorAll('section.run').forEach(function(s){
var age=Math.max(0,Math.round(now-parseFloat(s.dataset.updated)));var a=s.querySelector('.age');
if(a){a.textContent=age+' s ago';}var w=s.querySelector('.warn.stale');
if(w&&s.dataset.state==='running'){w.hidden=age<=parseFloat(s.dataset.stale);
w.querySelector('b').textContent=age+' s';}});}tick();setInterval(tick,1000);})();
"""


def _state_badge(state: str, extra: str = "") -> str:
    cls = escape(state.replace(" ", "-"))
    return f'<span class="st {cls}">{escape(state)}{escape(extra)}</span>'


def _model_row(model: Mapping[str, Any]) -> str:
    cells = model_cells(model)
    name = escape(cells[0])
    if model.get("details"):
        name = f'<a href="{escape(str(model["details"]))}">{name}</a>'
    total = int(model.get("total") or 0)
    share = 100 * int(model.get("answered") or 0) / total if total else 0
    bar = f'<span class="bar"><i style="width:{share:.0f}%"></i></span>'
    tds = [f'<td class="model">{name}</td>', f"<td>{_state_badge(cells[1])}</td>"]
    tds += [f"<td>{escape(c)}</td>" for c in cells[2:4]]
    tds.append(f"<td>{escape(cells[4])}{bar}</td>")
    tds += [f"<td>{escape(c)}</td>" for c in cells[5:12]]
    tds.append(f'<td class="err">{escape(_short(cells[12], 400))}</td>')
    return "<tr>" + "".join(tds) + "</tr>"


def _run_section(run: RunStatus, life: Liveness, now: float) -> str:
    state = run.state if life.state in ("ended", "running") else life.state
    code = f" (exit code {run.data.get('exit_code')})" if life.state == "ended" else ""
    manifest = f"runs/{run.run_id}/manifest.json"
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    body = "".join(_model_row(m) for m in run.models) or f'<tr><td colspan="{len(COLUMNS)}">no model yet</td></tr>'
    warn = (
        '<p class="warn stale" hidden>No update for <b></b>: the run may have died (host '
        f"{escape(str(run.data.get('host')))}, pid {escape(str(run.data.get('pid')))}). "
        "Run <code>deathmath-orchestrate status</code> there to check.</p>"
    )
    return "\n".join(
        [
            f'<section class="run" data-state="{escape(state)}" '
            f'data-updated="{float(run.data.get("updated_at") or now)}" data-stale="{run.stale_after():.0f}">',
            f"<h2>run {escape(str(run.run_id))} {_state_badge(state, code)}</h2>",
            f'<p class="meta">{escape(_meta_line(run, life, now))}<span class="age"></span>; '
            f'<a href="{escape(manifest)}">manifest</a></p>',
            f'<p class="meta">{escape(plan_line(run) or "")}</p>' if plan_line(run) else "",
            warn,
            f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>',
            "</section>",
        ]
    )


def _meta_line(run: RunStatus, life: Liveness, now: float) -> str:
    """The line under a run's title; the age of the last update is counted live by the page's script."""
    if life.state != "running":
        return headline(run, life, now) + "; updated "
    started = float(run.data.get("started_at") or now)
    return (
        f"host {run.data.get('host')}, pid {run.data.get('pid')}; started {when(started)}, running for "
        f"{duration(max(0.0, now - started))}; last update {when(run.data.get('updated_at'))}, "
    )


def render_status_html(runs: Sequence[RunStatus], now: float | None = None) -> str:
    """``results/status.html``: a section per run; reloads itself while any of them is running."""
    now = time.time() if now is None else now
    lives = [(run, run.liveness(now)) for run in runs]
    going = any(life.live for _, life in lives)
    refresh = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if going else ""
    sub = (
        f"Written by the run every few seconds; this page reloads itself every {REFRESH_S} s."
        if going
        else "No run is going: this is how the last one ended."
    )
    sections = [_run_section(run, life, now) for run, life in lives] or ["<p>no run yet</p>"]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            refresh,
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            "<title>DeathMath run status</title>",
            f"<style>{CSS}</style></head><body>",
            "<h1>DeathMath run status</h1>",
            f'<p class="sub">{escape(sub)} <a href="leaderboard.html">leaderboard</a></p>',
            *sections,
            f"<script>{SCRIPT}</script>",
            "</body></html>",
            "",
        ]
    )


__all__ = ["headline", "model_cells", "placement", "render_status_html", "render_status_text", "run_text", "when"]
