"""Answer checking: extract an answer from a completion, normalize it, compare it with the gold one.

A PoT program's printout becomes an answer through `answer_from_output` (Python values are parsed by
`read_python_value`, never evaluated). Running programs is the sandbox's job (`arithmo.sandbox`); this
package never imports it. A symbolic comparison is bounded in time by `arithmo.deadline`.
"""

from arithmo.grading.equal import GRADER_VERSION, grade, grading_counts, is_equivalent
from arithmo.grading.extract import answer_from_output, extract_answer, extract_program
from arithmo.grading.normalize import normalize_answer
from arithmo.grading.pyoutput import read_python_value

__all__ = [
    "GRADER_VERSION",
    "answer_from_output",
    "extract_answer",
    "extract_program",
    "grade",
    "grading_counts",
    "is_equivalent",
    "normalize_answer",
    "read_python_value",
]
