"""RFT de-duplication on hand-written solutions: equation lists (CoT) and normalised programs (PoT)."""

import pytest

from arithmo.rft.dedup import equation_holds, equation_list, program_key, solution_key, wrong_equations

# (solution, its equation list)
EQUATIONS = [
    ("She has 3 * 4 = 12 apples, then 12 + 5 = 17.\nThe answer is: 17", ("3*4=12", "12+5=17")),
    # GSM8K calculator annotations are the equations when present (the paper's source); the prose copy is not
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 24", ("48/2=24",)),
    ("1,200 + 300 = 1,500 dollars", ("1200+300=1500",)),          # thousands separators
    ("4 × 13 = 52 and 52 ÷ 4 = 13", ("4*13=52", "52/4=13")),       # unicode operators
    ("$3 \\times 4 = 12$", ("3*4=12",)),                          # LaTeX times, math dollars
    ("3 x 4 = 12", ("3*4=12",)),                                  # a letter x as the times sign
    ("(3 + 4) * 2 = 14", ("(3+4)*2=14",)),                        # parentheses kept: they are the order
    ("2^3 = 8", ("2**3=8",)),                                     # ^ and ** are one power sign
    ("12 - 5 = 7.0 left", ("12-5=7",)),                            # 7.0 is 7
    ("There are 7 apples. The answer is: 7", ()),                 # no equation: the empty list
    ("x = 5 and y = 2", ()),                                       # assignments are not equations
    ("The total is 20% of 50 = 10", ()),                           # no operator between the numbers
]


@pytest.mark.parametrize("text, expected", EQUATIONS)
def test_equation_list(text, expected):
    assert equation_list(text) == expected


# (solution a, solution b, the same reasoning path?)
SAME_PATH = [
    # other words, same equations in the same order: one path (Yuan et al.'s criterion)
    ("Ava buys 3 * 12 = 36 stickers and gives 36 - 7 = 29 away.\nThe answer is: 29",
     "Three packs hold 3 * 12 = 36. Then 36 - 7 = 29 remain.\nThe answer is: 29", True),
    # spacing and separators do not make a new path
    ("1,000 + 24 = 1,024", "1000+24=1024", True),
    # other equations: another path, even with the same answer
    ("3 * 12 = 36, 36 - 7 = 29", "12 * 3 = 36, 36 - 7 = 29", False),
    # the same equations in another order: another path (a list, not a set)
    ("2 + 3 = 5, 4 * 5 = 20", "4 * 5 = 20, 2 + 3 = 5", False),
    # two solutions without any equation share the empty list: one is kept per question
    ("It is 7.", "Clearly 7.", True),
]


@pytest.mark.parametrize("a, b, same", SAME_PATH)
def test_same_cot_path(a, b, same):
    assert (solution_key("cot", a) == solution_key("cot", b)) is same


# (program a, program b, the same normalised program?)
SAME_PROGRAM = [
    # comments, spacing and blank lines do not change the program
    ("a = 3\nb = 4  # apples\n\nprint(a + b)", "a=3\nb=4\nprint(a+b)", True),
    # its own variable names do not either
    ("start = 3\nmore = 4\nprint(start + more)", "x = 3\ny = 4\nprint(x + y)", True),
    # a docstring is not computation
    ("def f(n):\n    '''twice n'''\n    return 2 * n\nprint(f(4))", "def g(k):\n    return 2 * k\nprint(g(4))", True),
    # another operation is another program
    ("x = 3\ny = 4\nprint(x + y)", "x = 3\ny = 4\nprint(y + x)", False),
    # library names are kept: math.floor is not math.ceil
    ("import math\nprint(math.floor(2.5))", "import math\nprint(math.ceil(2.5))", False),
    # renaming is consistent: swapping which value goes where is a different program
    ("a = 3\nb = 4\nprint(a - b)", "a = 3\nb = 4\nprint(b - a)", False),
    # a program that does not parse falls back to its text, whitespace collapsed
    ("print((3 +\n 4", "print((3 + 4", True),
]


@pytest.mark.parametrize("a, b, same", SAME_PROGRAM)
def test_same_program(a, b, same):
    assert (program_key(a) == program_key(b)) is same


def test_solution_key_uses_the_program_the_sandbox_ran():
    fenced = "Here is my program:\n```python\nx = 2\nprint(x * 3)\n```"
    assert solution_key("pot", fenced, program="x = 2\nprint(x * 3)") == solution_key("pot", "y = 2\nprint(y * 3)")
    with pytest.raises(ValueError, match="style"):
        solution_key("hybrid", "x")


# (equation as equation_list writes it, whether its arithmetic holds; None: it cannot be checked)
HOLDS = [
    ("3*4=12", True),
    ("29*8=224", False),            # the slip RFT must not teach: 29 * 8 is 232
    ("10/3=3", False),              # an integer result must be exact
    ("10/3=3.33", True),            # a decimal may be the exact value rounded to the digits shown
    ("10/3=3.4", False),            # ... but rounded right
    ("(3+4)*2=14", True),
    ("2**3=8", True),
    ("-3+5=2", True),
    ("5/0=1", False),               # a division by zero is wrong, never an error
    ("9**99=1", None),              # too large to check: not counted as wrong
]


@pytest.mark.parametrize("equation, holds", HOLDS)
def test_equation_holds(equation, holds):
    assert equation_holds(equation) is holds


def test_wrong_equations_of_a_solution():
    text = "Omar reads 29 * 8 = 224 pages. With 40 more that is 224 + 40 = 264 pages.\nThe answer is: 264"
    assert wrong_equations(text) == ["29*8=224"]  # the second step is right given the first
    assert wrong_equations("Natalia sold 48/2 = <<48/2=24>>24 clips.") == []
