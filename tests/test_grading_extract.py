"""Answer extraction: answer lines, \\boxed{}, GSM8K ####, the last-number fallback, PoT programs."""

import pytest

from arithmo.grading import answer_from_output, extract_answer, extract_program, grade

# (completion, strict, flexible) — each row names the pitfall it covers
EXTRACT_CASES = [
    # MetaMath / Arithmo final line
    ("Natalia sold 48 + 24 = 72 clips.\nThe answer is: 72", "72", "72"),
    # the LAST answer line wins (a model that corrects itself)
    ("The answer is: 5\nWait, 2 + 4 = 6.\nThe answer is: 6", "6", "6"),
    # MathInstruct style: no colon, a closing full stop that is not a decimal point
    ("So it costs $5.\nThe answer is 5.", "5", "5"),
    # a decimal answer keeps its point
    ("Half of 5 is 2.5\nThe answer is 2.5", "2.5", "2.5"),
    # the line runs to its end: a fraction with spaces survives whole
    ("The answer is: \\frac{1}{2} + \\sqrt{3}", "\\frac{1}{2} + \\sqrt{3}", "\\frac{1}{2} + \\sqrt{3}"),
    # a text generation that runs on into a new question after the answer line
    ("3 + 4 = 7.\nThe answer is: 7\n\nQuestion: What is 2 + 2?", "7", "7"),
    # a chat end token (decoded with special tokens kept) and what follows it are not part of the answer
    ("2 + 2 = 4.\nThe answer is: 4<|im_end|>\n<|im_start|>user\nThe answer is: 9", "4", "4"),
    # Minerva's "Final Answer: The final answer is X. I hope it is correct."
    ("Final Answer: The final answer is $18$. I hope it is correct.", "18", "18"),
    # "The answer is" opening a sentence that is not an answer
    ("The answer is not obvious. We compute 2+2 and stop", None, "2"),
    # an explanation after "the final answer is" is not the answer; the \boxed{} before it is
    ("so $x = \\boxed{\\frac{130}{231}}$. The final answer is positive, because two of the three are negative.",
     "\\frac{130}{231}", "\\frac{130}{231}"),
    # mid-sentence "the answer is correct" is a word, not an answer
    ("We check whether the answer is correct by substituting 3.", None, "3"),
    # a multiple-choice letter opening its own sentence is an answer
    ("Only option C fits. The answer is C.", "C", "C"),
    # \boxed with nested braces
    ("Thus $x = \\boxed{\\frac{\\sqrt{3}}{2}}$.", "\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}"),
    # the LAST \boxed wins
    ("First $\\boxed{1}$, then corrected: $\\boxed{2}$.", "2", "2"),
    # \boxed without braces and \fbox
    ("So the result is $\\boxed 5$.", "5", "5"),
    ("Hence \\fbox{12}.", "12", "12"),
    # a \boxed cut off by the length limit is not an answer
    ("So $x = \\boxed{\\frac{1}{", None, "1"),
    # an answer line holding a \boxed: the content, not the command
    ("The answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}", "\\frac{1}{2}"),
    # GSM8K's tail
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72", "72"),
    # thousands separators stay for the normalizer
    ("The total is 1000 dollars.\n#### 1,000", "1,000", "1,000"),
    # no explicit marker: strict says None, flexible takes the last number
    ("She has 3 apples and buys 4 more, so 7 apples.", None, "7"),
    # last-number fallback keeps thousands groups, decimals and a sign that is not a subtraction
    ("It costs $1,234.50 in total", None, "1,234.50"),
    ("5 - 3 = 2", None, "2"),
    ("The temperature falls to -4 degrees", None, "-4"),
    # a fraction written with a slash is one number
    ("Each gets 3/4 of a pie", None, "3/4"),
    # nothing at all
    ("I do not know.", None, None),
    ("", None, None),
    # --- grader v2 (issue 11): "Answer:" lines
    ("ANSWER: \\frac{3}{4}", "\\frac{3}{4}", "\\frac{3}{4}"),                    # issue 11: upper case, no "is"
    ("Final Answer: The smallest value is 9.", "9", "9"),                         # issue 11: a sentence after the colon
    ("final answer: 42", "42", "42"),                                             # lower case
    ("Answer: 17", "17", "17"),
    ("We add them.\n**Final Answer:** $42$", "42", "42"),                         # Markdown bold around the marker
    ("**Final Answer**: **$42$**", "42", "42"),
    ("## Final Answer\n\n**Answer:** 12", "12", "12"),                             # a heading, then the line
    ("**Final Answer:**\n42", "42", "42"),                                        # the value on the next line
    ("Final answer: Sarah has 15 apples.", "15", "15"),                            # a sentence without 'is': its number
    ("Final Answer: The smallest value is 9, because 3 squared is 9.", "9", "9"),  # the reason after the value
    ("Answer: (B)", "(B)", "(B)"),
    ("Final answer: $x = 5$", "x = 5", "x = 5"),                                   # the normalizer drops x =
    ("The answer is: 7\nANSWER: 8", "8", "8"),                                    # the last marker wins
    ("Let me verify the answer: 2 + 2 = 4, fine. So 5 it is.", None, "5"),         # "answer:" mid-sentence is no marker
    # --- bold
    ("The final answer is **42**.", "42", "42"),                                  # issue 11
    ("The answer is **$42$**.", "42", "42"),                                      # bold around math
    ("The answer is $**42**$", "42", "42"),                                       # math around bold
    # --- the last-number fallback
    ("... falls to \u22123 degrees.", None, "-3"),                                 # issue 11: a Unicode minus
    ("The temperature is \u221212\u00b0C at night", None, "-12"),
    ("so the ratio is \\frac{3}{4}", None, "\\frac{3}{4}"),                         # issue 11: not the 4 inside
    ("so x = \\dfrac{5}{12}.", None, "\\dfrac{5}{12}"),
    ("which gives -\\frac{1}{2}", None, "-\\frac{1}{2}"),                           # a negative fraction
    ("the side is 2\\sqrt{3}", None, "2\\sqrt{3}"),                                # a root is one number too
    ("The area is 25 cm^2", None, "25"),                                           # an exponent is not the answer
    ("The area is 25 \\text{cm}^{2}", None, "25"),
    # --- what must NOT become an answer
    ("Answer: Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether.",
     None, "72"),                                                                  # reasoning after "Answer:"
    ("She sold 72 clips.\n#### 72\n\nQuestion: Tom has 3 apples.\nAnswer: Tom eats 1, so 2.",
     "72", "72"),                                                                  # a base model's next question
    # --- a computation that ends in its result
    ("The answer is 48 + 24 = 72.", "72", "72"),
    ("Final answer: \\frac{1}{2}+\\frac{1}{3} = \\frac{5}{6}", "\\frac{5}{6}", "\\frac{5}{6}"),
    ("The answer is: x = 5", "x = 5", "x = 5"),                                    # a variable keeps its equation
]


@pytest.mark.parametrize("completion, strict, flexible", EXTRACT_CASES)
def test_extract_answer(completion, strict, flexible):
    assert extract_answer(completion) == strict
    assert extract_answer(completion, mode="strict") == strict
    assert extract_answer(completion, mode="flexible") == flexible


# (completion, gold, extracted) — several \\boxed{} count together only when the gold lists several answers
BOXES_WITH_GOLD = [
    ("So x = \\boxed{2} or x = \\boxed{3}.", "2, 3", "2, 3"),                # issue 11
    ("So x = \\boxed{2} or x = \\boxed{3}.", "3", "3"),                      # one answer: the last box, as v1
    ("First \\boxed{1}, then corrected: \\boxed{2}.", "2", "2"),
    ("$\\boxed{2}$ and $\\boxed{-3}$", "\\{-3, 2\\}", "2, -3"),                # a set gold
    ("roots \\boxed{1+\\sqrt2} and \\boxed{1-\\sqrt2}", "1\\pm\\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2"),  # a plus-minus gold
    ("\\boxed{(1,2)} and \\boxed{(3,4)}", "(1,2)", "(3,4)"),                # a pair is ONE answer
    ("\\boxed{2, 3}", "2, 3", "2, 3"),                                      # one box already holds them all
    ("\\boxed{2} so \\boxed{2} and \\boxed{3}", "2, 3", "2, 3"),              # a repeated box counts once
    ("\\boxed{2} or \\boxed{3}. The answer is: 4", "2, 3", "4"),             # a later answer line wins
]


@pytest.mark.parametrize("completion, gold, extracted", BOXES_WITH_GOLD)
def test_several_boxes_against_a_gold_with_several_answers(completion, gold, extracted):
    assert extract_answer(completion, gold=gold) == extracted


def test_grade_passes_the_gold_to_extraction():
    assert grade("So x = \\boxed{2} or x = \\boxed{3}.", "3, 2")["correct_strict"] is True
    assert grade("So x = \\boxed{2} or x = \\boxed{3}.", "3")["correct_strict"] is True
    assert grade("So x = \\boxed{2} or x = \\boxed{4}.", "3, 2")["correct_strict"] is False


def test_extract_answer_rejects_a_bad_mode_and_type():
    with pytest.raises(ValueError, match="'strict' or 'flexible'.*'lenient'"):
        extract_answer("The answer is: 5", mode="lenient")
    with pytest.raises(TypeError, match="expects a str completion, got int"):
        extract_answer(5)


# (completion, program) — each row names the pitfall it covers
PROGRAM_CASES = [
    # a fenced python block
    ("Let's compute.\n```python\nx = 3\nprint(x * 2)\n```\nThe output is 6.", "x = 3\nprint(x * 2)"),
    # the first block that is code wins over a later output block
    ("```python\nprint(1 + 1)\n```\n```output\n2\n```", "print(1 + 1)"),
    # an output block first is not code; the python block after it is taken
    ("```output\n2\n```\n```python\nprint(2)\n```", "print(2)"),
    # an unlabelled fence holding code
    ("```\nimport math\nprint(math.sqrt(16))\n```", "import math\nprint(math.sqrt(16))"),
    # an unclosed fence (generation hit its limit) runs to the end
    ("```python\nn = 10\nprint(n", "n = 10\nprint(n"),
    # bare code with a chat end token and junk after it
    ("total = 5 + 7\nprint(total)<|im_end|>\n<|im_start|>user", "total = 5 + 7\nprint(total)"),
    # leading prose, then bare code
    ("Here is a program:\ndef solve():\n    return 4\nprint(solve())", "def solve():\n    return 4\nprint(solve())"),
    # bare code that does not parse (a model's syntax error) is still the program: the sandbox reports it
    ("x = (3 +\nprint(x)", "x = (3 +\nprint(x)"),
    # prose only, a lone number, a lone word: no program
    ("The answer is 5.", None),
    ("42", None),
    ("hello", None),
    # a fence in another language is not a Python program
    ("```bash\nls -l\n```", None),
    ("", None),
]


@pytest.mark.parametrize("completion, program", PROGRAM_CASES)
def test_extract_program(completion, program):
    assert extract_program(completion) == program


@pytest.mark.parametrize("stdout, answer", [
    ("5\n", "5"),
    ("step 1\nstep 2\n  42.0  \n\n", "42.0"),   # last non-empty line, stripped
    ("", None),                                 # printed nothing
    ("\n  \n", None),                           # printed only blank lines
])
def test_answer_from_output(stdout, answer):
    assert answer_from_output(stdout) == answer
