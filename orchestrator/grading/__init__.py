"""The DeathMath grader: extraction, Russian-aware normalisation, a restricted parser, equivalence, a sandbox.

    from orchestrator.grading import grade, grade_many, extract_answer, GradeRequest, grade_file

Model text never reaches ``eval``, ``sympify`` or ``parse_expr``: it is tokenised and parsed by ``parser.py``
into sympy objects with bounded sizes, inside worker processes with a hard timeout and a memory cap.
"""

from __future__ import annotations

from .api import GradeRequest, default_pool, grade, grade_many, shutdown
from .extract import extract_answer
from .jsonl import grade_file
from .pool import GraderPool

__all__ = [
    "GradeRequest",
    "GraderPool",
    "default_pool",
    "extract_answer",
    "grade",
    "grade_file",
    "grade_many",
    "shutdown",
]
