"""An orchestrator in miniature as a separate process, and the processes a run left behind (no-orphan tests against
the fake vLLM and the real one): ``spawn_owner`` starts ``count`` servers in a separate owner process that prints
their pids once ready (``owner_pids`` reads them) and waits to be killed or signalled; ``marked`` finds every live
process of a run (its marker in the environment, or stdout on one of its logs); ``reap_all`` clears up after a test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import psutil

from orchestrator.contract import ServerSpec
from orchestrator.serving.launch import RUN_ENV
from orchestrator.serving.records import cleanup

REPO = Path(__file__).resolve().parents[2]

# An orchestrator in miniature: start N servers, print their pids, wait to be killed or signalled.
OWNER = r"""
import json, logging, sys, time
from pathlib import Path
from orchestrator.contract import ServerSpec
from orchestrator.serving.server import VllmServer
from orchestrator.serving.signals import SERVERS, install_signal_handlers

logging.basicConfig(level=logging.INFO)
cfg = json.loads(sys.argv[1])
install_signal_handlers(SERVERS.stop_all)
servers = []
for i in range(cfg["count"]):
    spec = ServerSpec(**{**cfg["spec"], "name": f"m{i}", "env": tuple(map(tuple, cfg["spec"]["env"]))})
    servers.append(VllmServer(spec, cfg["run_id"], Path(cfg["logs"])))
for s in servers:
    s.start()
for s in servers:
    s.wait_ready()
print(json.dumps([s.pid for s in servers]), flush=True)
time.sleep(600)
"""


def spawn_owner(spec: ServerSpec, logs: Path, run_id: str, count: int) -> subprocess.Popen:
    """A separate orchestrator process that starts ``count`` servers; ``owner_pids`` waits until they are ready."""
    cfg = {"spec": asdict(spec), "logs": str(logs), "run_id": run_id, "count": count}
    return subprocess.Popen([sys.executable, "-c", OWNER, json.dumps(cfg)], stdout=subprocess.PIPE, cwd=REPO, text=True)


def owner_pids(owner: subprocess.Popen) -> list[int]:
    line = owner.stdout.readline()
    assert line, f"owner exited with {owner.wait(10)} before its servers were ready"
    return json.loads(line)


def marked(run_id: str, logs: Path) -> list[int]:
    """Live processes of this run: its marker in their environment, or stdout on one of its logs (retitled ones)."""
    run_logs = str((logs / run_id).resolve()) + os.sep
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(RUN_ENV) == run_id or os.readlink(f"/proc/{proc.pid}/fd/1").startswith(run_logs):
                found.append(proc.pid)
        except (psutil.Error, OSError):
            pass
    return found


def reap_all(owner: subprocess.Popen, logs: Path, run_id: str) -> None:
    """For `finally`: whatever an assertion left behind goes (the owner, then every server it recorded)."""
    owner.kill()
    owner.wait(10)
    cleanup(logs, grace=2.0)
    for pid in marked(run_id, logs):
        os.kill(pid, signal.SIGKILL)
