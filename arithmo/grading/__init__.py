"""Answer checking: extract an answer from a completion, normalize it, compare it with the gold one.

The PoT sandbox (`arithmo.grading.execute`) is imported from its own module, not from here.
"""

from arithmo.grading.equal import GRADER_VERSION, grade, grading_counts, is_equivalent
from arithmo.grading.extract import answer_from_output, extract_answer, extract_program
from arithmo.grading.normalize import normalize_answer

__all__ = [
    "GRADER_VERSION",
    "answer_from_output",
    "extract_answer",
    "extract_program",
    "grade",
    "grading_counts",
    "is_equivalent",
    "normalize_answer",
]
