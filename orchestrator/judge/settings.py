"""The ``judge:`` block of run.yaml: which model audits the rule grader, how, and on which answers.

```yaml
judge:
  model: qwen-judge     # a model block of this file (managed vLLM or API), not necessarily in model_list
  mode: audit           # audit (default): the score is the rule grader's; rescue: judge-accepted answers count too
  sample_correct: 0.05  # share of rule-correct answers also judged (seeded), to estimate false positives
  seed: 0               # which rule-correct answers fall in that share
```

``parse_judge`` validates the raw mapping and raises through the caller's ``fail(where, problem, fix)`` so that
every message has the config's own one-line form (file, field path, value, fix).
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

Fail = Callable[[str, str, str], ConfigError]

DEFAULT_SAMPLE_CORRECT = 0.05
JUDGE_KEY = "judge"  # the judge's job, server and progress line (a top-level key: no model block can take it)
KEYS = ("model", "mode", "sample_correct", "seed")


class JudgeMode(enum.Enum):
    """What the judge's verdicts do to the score."""

    AUDIT = "audit"  # the score stays the rule grader's; disagreements are shown
    RESCUE = "rescue"  # answers the rule grader rejected and the judge accepts count as correct too


@dataclass(frozen=True)
class JudgeSettings:
    """A validated ``judge:`` block."""

    model: str
    mode: JudgeMode = JudgeMode.AUDIT
    sample_correct: float = DEFAULT_SAMPLE_CORRECT
    seed: int = 0


def parse_judge(raw: Any, models: Collection[str], fail: Fail) -> JudgeSettings | None:
    """The settings of a ``judge:`` block (None when the file has none); ``models`` are the file's model blocks."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise fail("judge", f"expected a mapping, got {type(raw).__name__}", "write `judge: {model: <a model block>}`")
    for key in raw:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            fix = f"did you mean `{close[0]}`?" if close else f"use only {', '.join(KEYS)}"
            raise fail(f"judge.{key}", "unknown key", fix)
    return JudgeSettings(
        model=_model(raw.get("model"), models, fail),
        mode=_mode(raw.get("mode", JudgeMode.AUDIT.value), fail),
        sample_correct=_share(raw.get("sample_correct", DEFAULT_SAMPLE_CORRECT), fail),
        seed=_seed(raw.get("seed", 0), fail),
    )


def _model(value: Any, models: Collection[str], fail: Fail) -> str:
    if value is None:
        raise fail("judge.model", "missing", "name the model block that judges, e.g. `model: qwen-judge`")
    if not isinstance(value, str) or value not in models:
        known = ", ".join(sorted(models)) or "none"
        raise fail("judge.model", f"{value!r} is not a model block of this file", f"name one of: {known}")
    return value


def _mode(value: Any, fail: Fail) -> JudgeMode:
    try:
        return JudgeMode(value)
    except ValueError:
        raise fail("judge.mode", f"unsupported value {value!r}", "use audit or rescue") from None


def _share(value: Any, fail: Fail) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise fail("judge.sample_correct", f"{value!r} is not a share", "use a number from 0 to 1, e.g. 0.05")
    return float(value)


def _seed(value: Any, fail: Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail("judge.seed", f"{value!r} is not an integer", "use a whole number, e.g. 0")
    return value
