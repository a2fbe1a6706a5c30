"""The in-memory view of one series: the best record per problem id, and its score."""
from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from ..contract import AnswerRecord, SeriesScore

log = logging.getLogger(__name__)


def to_record(obj: Mapping[str, Any]) -> AnswerRecord | None:
    """A details line as an ``AnswerRecord``; ``None`` (with a warning) when required fields are missing."""
    try:
        return AnswerRecord.from_dict(obj)
    except TypeError:
        log.warning("skipping a details line without the required fields (id=%r)", obj.get("id"))
        return None


class SeriesState:
    """Best record per id in order of first appearance: the latest successful one, else the latest error."""

    def __init__(self, settings_hash: str | None = None) -> None:
        self.settings_hash = settings_hash
        self.best: dict[str, AnswerRecord] = {}
        self.foreign = 0  # lines of another settings hash (never mixed in)

    def absorb_dicts(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Absorb parsed JSONL objects."""
        for obj in objects:
            rec = to_record(obj)
            if rec is not None:
                self.absorb(rec)

    def absorb(self, rec: AnswerRecord) -> None:
        """Take ``rec`` unless it is an error and the id already has a successful answer."""
        if self.settings_hash and rec.settings_hash != self.settings_hash:
            self.foreign += 1
            return
        cur = self.best.get(rec.id)
        if cur is None or rec.error is None or cur.error is not None:
            self.best[rec.id] = rec

    def done(self, problem_id: str) -> bool:
        """Whether ``problem_id`` has a successful answer."""
        rec = self.best.get(problem_id)
        return rec is not None and rec.error is None

    def records(self) -> list[AnswerRecord]:
        return list(self.best.values())

    def score(self, meta: Mapping[str, Any], model: str, dataset: str) -> SeriesScore:
        """The aggregate of this series; ``total`` and ``eval_seconds`` come from the meta."""
        ok = [r for r in self.best.values() if r.error is None]
        return SeriesScore(
            model=model, dataset=dataset, settings_hash=self.settings_hash or str(meta.get("settings_hash", "")),
            total=max(int(meta.get("total") or 0), len(ok)), answered=len(ok),
            correct=sum(r.verdict == "correct" for r in ok), errors=len(self.best) - len(ok),
            prompt_tokens=sum(r.prompt_tokens for r in ok), completion_tokens=sum(r.completion_tokens for r in ok),
            eval_seconds=float(meta.get("eval_seconds") or 0.0),
            truncated=sum(r.finish_reason == "length" for r in ok))
