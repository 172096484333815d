"""What a PoT program prints, read as an answer (arithmo.grading.pyoutput via answer_from_output).

Tables of (stdout, gold, expected verdict) with the pitfall named; then the reader's own text form for
a few values, and the safety of the reader (it parses, never evaluates).
"""

import pytest

from arithmo.grading import answer_from_output, is_equivalent
from arithmo.grading.pyoutput import NotReadable, read_python_value

LISTS = [
    ("[5]\n", "5", True),                                     # issue 11: sympy's solve with one root
    ("[2, 3]\n", "2, 3", True),                               # issue 11: v1 read this as an interval
    ("[2, 3]\n", "[2, 3]", False),                            # ... and a list is not the closed interval
    ("[-5, 3]\n", "3, -5", True),                             # roots in any order
    ("[2, 3]\n", "2", False),                                 # an extra root
    ("[(1, 2)]\n", "(1, 2)", True),                           # one solution of a system
    ("[(1, 2), (3, 4)]\n", "(3, 4), (1, 2)", True),
    ("(2, 3)\n", "(2, 3)", True),                             # a tuple keeps its order ...
    ("(2, 3)\n", "2, 3", False),                              # ... and is not a list
    ("{1, 2}\n", "\\{1, 2\\}", True),                         # sympy's FiniteSet prints {1, 2}
    ("{5}\n", "5", True),
    ("{x: 3}\n", "3", True),                                  # solve(..., dict=True)
    ("[{x: 2}, {x: 3}]\n", "2, 3", True),
    ("{x: 1, y: 2}\n", "(1, 2)", True),                       # a system's solution as a pair
    ("['A', 'C']\n", "A, C", True),                           # letters of a multiple-choice answer
    ("2 3\n", "2, 3", True),                                  # print(a, b) writes two values ...
    ("2 3\n", "23", False),                                   # ... not the number 23
    ("32, 349\n", "32349", False),                            # two numbers, not a thousands separator
    ("1,000\n", "1000", True),                                # f"{x:,}" is one number
    ("{-1: 1, 2: 1}\n", "-1, 2", True),                      # sympy's roots(): {root: multiplicity}
    ("{2: 2}\n", "2", True),                                 # a double root
]

NUMPY = [
    ("[np.float64(18.0)]\n", "18", True),                     # issue 11: numpy 2 scalar repr in a list
    ("[3. 2.]\n", "2, 3", True),                              # issue 11: print(np.roots([1, -5, 6]))
    ("np.float64(18.0)\n", "18", True),
    ("np.int64(7)\n", "7", True),
    ("np.float32(2.5)\n", "\\frac52", True),
    ("[np.int64(2), np.int64(3)]\n", "2, 3", True),
    ("[np.float64(1.0), np.float64(-2.0)]\n", "1, -2", True),
    ("array([1, 2, 3])\n", "1, 2, 3", True),                  # repr of an array
    ("array([0.5, 1.5])\n", "\\frac12, \\frac32", True),
    ("[-3.  2.]\n", "2, -3", True),                           # numpy pads with spaces
    ("[ 1.5 -2. ]\n", "-2, 1.5", True),
    ("[[1 2]\n [3 4]]\n", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),  # a matrix over two lines
    ("array([[1, 2],\n       [3, 4]])\n", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
    ("array([1.+2.j, 1.-2.j])\n", "1 \\pm 2i", True),         # complex roots
    ("[1.+2.j 1.-2.j]\n", "1+2i, 1-2i", True),
    ("np.float64(0.5)\n", "\\frac{1}{2}", True),
    ("[3. 2.]\n", "3.2", False),                              # v1 read the array as the number 3.2
]

COMPLEX = [
    ("(1+3j)\n", "1+3i", True),                               # issue 11: Python's complex
    ("1 + 3*I\n", "1+3i", True),                              # issue 11: sympy's complex
    ("(1-2j)\n", "1-2i", True),
    ("2j\n", "2i", True),
    ("-1j\n", "-i", True),
    ("sqrt(3)*I\n", "i\\sqrt{3}", True),
    ("2 - 3*I\n", "2-3i", True),
    ("np.complex128(3+4j)\n", "3+4i", True),
    ("(3+0j)\n", "3", True),
    ("(2+1.2246467991473532e-16j)\n", "2", True),             # float noise in the imaginary part
    ("-1/2 - sqrt(3)*I/2\n", "-\\frac12-\\frac{\\sqrt3}{2}i", True),
    ("[-1/2 - sqrt(3)*I/2, -1/2 + sqrt(3)*I/2]\n", "\\frac{-1\\pm i\\sqrt{3}}{2}", True),
    ("(1+3j)\n", "1-3i", False),                              # the conjugate is another number
]

SYMPY = [
    ("sqrt(2)/2\n", "\\frac{\\sqrt{2}}{2}", True),
    ("3*pi/4\n", "\\frac{3\\pi}{4}", True),
    ("2*sqrt(5)\n", "2\\sqrt5", True),
    ("pi\n", "\\pi", True),
    ("oo\n", "\\infty", True),
    ("3/4\n", "\\frac34", True),                              # Rational prints 3/4
    ("Fraction(3, 4)\n", "0.75", True),
    ("x**2 - 1\n", "(x-1)(x+1)", True),                       # ** is a power
    ("x**2 - 1\n", "(x-1)^2", False),
    ("Interval(1, 2)\n", "[1, 2]", True),
    ("Interval.open(0, 1)\n", "(0, 1)", True),
    ("Interval.Ropen(0, 1)\n", "[0, 1)", True),
    ("Interval(-oo, 3)\n", "(-\\infty, 3]", True),            # an infinite end is open
    ("Union(Interval.open(-oo, 1), Interval.open(2, oo))\n", "(-\\infty,1)\\cup(2,\\infty)", True),
    ("(3 <= x) & (x < oo)\n", "[3, \\infty)", True),          # reduce_inequalities
    ("(1 < x) & (x < 3)\n", "(1, 3)", True),
    ("x >= 3\n", "x \\geq 3", True),
    ("Eq(y, 2*x + 1)\n", "y = 2x + 1", True),
    ("Decimal('2.50')\n", "2.5", True),
]

TEXT = [
    ("The answer is 42\n", "42", True),                       # a sentence with an answer marker
    ("Total: 42\n", "42", True),                              # a label
    ("x = 5\n", "5", True),
    ("answer = 12.5\n", "12.5", True),
    ("x = 3, y = 4\n", "(3, 4)", True),                       # two labels: a pair
    ("42 apples\n", "42", True),
    ("\\frac{3}{4}\n", "0.75", True),                         # LaTeX a program printed
    ("step 1\n42\n", "42", True),                             # the last line is the answer
    ("[5]\n[6]\n", "6", True),
    ("0.3333333333333333\n", "\\frac13", True),               # a float at machine precision
    ("0.33\n", "\\frac13", False),                            # a rounded one
    ("24.000000000000004\n", "24", True),
    ("The roots are [2, 3]\n", "2, 3", True),                # a sentence ending in a Python value
    ("Roots: [2, 3]\n", "3, 2", True),                        # a label before a Python value
    ("x is 5.\n", "5", True),
    ("The roots are 2 and 3\n", "3, 2", True),                # a sentence with words between the values
    ("The total is 42 dollars\n", "42", True),
]


@pytest.mark.parametrize("stdout, gold, expected", LISTS + NUMPY + COMPLEX + SYMPY + TEXT)
def test_printed_value_against_gold(stdout, gold, expected):
    assert is_equivalent(answer_from_output(stdout), gold) is expected


@pytest.mark.parametrize("stdout", ["", "\n \n", "None\n", "nan\n", "[]\n", "set()\n", "EmptySet\n"])
def test_nothing_printed_is_no_answer(stdout):
    assert answer_from_output(stdout) is None


# (printed, text the reader gives) — the form handed to the normalizer
READ_CASES = [
    ("[2, 3]", "2, 3"),                                       # a list: bare items
    ("(2, 3)", "(2, 3)"),                                     # a tuple keeps its brackets
    ("(1+3j)", "1+3i"),
    ("[np.float64(18.0)]", "18.0"),
    ("sqrt(3)/2", "\\frac{\\sqrt{3}}{2}"),
    ("x**2 + 2*x + 1", "x^{2}+2x+1"),
    ("Interval.Lopen(0, 1)", "(0, 1]"),
    ("Matrix([[1], [2]])", "\\begin{pmatrix}1 \\\\ 2\\end{pmatrix}"),
    ("-(x + 1)", "-(x+1)"),                                   # a negated sum keeps its brackets
    ("(x + 1)**2", "(x+1)^{2}"),
]


@pytest.mark.parametrize("printed, text", READ_CASES)
def test_read_python_value(printed, text):
    assert read_python_value(printed) == text


@pytest.mark.parametrize("printed", [
    "__import__('os').system('touch /tmp/pwned')",            # calls outside the allow-list
    "().__class__.__bases__[0].__subclasses__()",
    "open('/etc/passwd').read()",
    "lambda: 1",
    "[x for x in range(3)]",
    "[" * 300 + "]" * 300,                                    # nested past the parser's limit
    "The answer is 5",                                        # prose: the caller keeps the text
    "[0 1 2 ... 7 8 9]",                                      # numpy's summarised array is not the value
])
def test_reader_refuses_what_is_not_a_plain_value(printed):
    with pytest.raises(NotReadable):
        read_python_value(printed)


def test_printed_code_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    answer = answer_from_output(f"__import__('os').system('touch {marker}')\n")
    assert not marker.exists()
    assert is_equivalent(answer, "0") is False


def test_bad_stdout_type_is_named():
    with pytest.raises(TypeError, match="stdout as a str, got bytes"):
        answer_from_output(b"5")
