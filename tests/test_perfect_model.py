"""A perfect model scores 100% on every benchmark, and a model that is always wrong scores 0% (issue 25).

For every benchmark in `arithmo.benchmarks.BENCHMARKS` and every style (cot, pot, hybrid, tir), each fixture
item's gold becomes scripted completions - one in the benchmark's own answer convention (GSM8K's `#### 72`,
MATH's `\\boxed{}`, MGSM zh's `答案是 18。`, CMATH's `答：12元`, ...) and one in arithmo's trained format (`The
answer is: X`) - and they go through the same code path as evaluation: `arithmo.evaluation.predict.predict` with
a `complete` function that returns them and a real sandbox for the programs. A benchmark whose answers cannot
be read fails here, naming the item, rather than reporting a low score. A benchmark added without a fixture
file (tests/fixtures/benchmarks/<name>.jsonl) fails too.
"""

import re
from fractions import Fraction
from pathlib import Path

import pytest

from arithmo.benchmarks import BENCHMARKS, load_items
from arithmo.evaluation.predict import predict
from arithmo.grading import is_equivalent, normalize_answer
from arithmo.prompts import POT_HINTS
from arithmo.sandbox import Sandbox

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
# Extra synthetic rows in a benchmark's schema for conventions its fixture lacks (CMATH: a percent gold).
EXTRA = {"cmath": ["cmath_percent.jsonl"]}

GSM8K_STYLE = "Let us work it out step by step.\nSo the total is as computed.\n#### {answer}"  # Cobbe et al. 2021
BOXED = "We simplify and find the value.\nTherefore, the final answer is $\\boxed{{{answer}}}$."  # MATH solutions
# Each benchmark's own convention for a final answer (the format of its reference solutions or few-shot exemplars).
OWN_CONVENTION = {
    "gsm8k": GSM8K_STYLE, "gsm8k_platinum": GSM8K_STYLE, "gsm_plus": GSM8K_STYLE,
    "math": BOXED, "math500": BOXED, "aime24": BOXED, "aime25": BOXED, "amc23": BOXED, "olympiadbench": BOXED,
    # Minerva (Lewkowycz et al. 2022) four-shot format, used by lm-evaluation-harness' minerva_math
    "minerva_math": "Final Answer: The final answer is ${answer}$. I hope it is correct.",
    "svamp": "Adding up the quantities in the story.\nThe answer is {answer}.",
    # MGSM's zh exemplars: "逐步解答：... 答案是 X。" (Shi et al. 2022)
    "mgsm_zh": "逐步解答：先算出每一步。\n答案是 {answer}。",
    # a Chinese school answer line "答：..." (CMATH, Math23K)
    "cmath": "解：按题意列式计算。\n答：{answer}。",
    "math23k": "解：按题意列式计算。\n答：{answer}。",
    "math401": "= {answer}",
}
TRAINED = "Let us think step by step.\nThe answer is: {answer}"  # arithmo's (MetaMath's) final answer line
STYLES = ("cot", "pot", "hybrid", "tir")


def _items(name: str) -> list[dict]:
    path = FIXTURES / f"{name}.jsonl"
    assert path.is_file(), f"benchmark {name}: no fixture rows at {path} (add a few rows in its own schema)"
    items = load_items(name, path=path)
    for extra in EXTRA.get(name, []):
        more = load_items(name, path=FIXTURES / extra)
        items += [dict(item, id=f"{item['id']}-extra") for item in more]
    golds = [item["answer"] for item in items if item["answer"].strip()]
    assert golds, f"benchmark {name}: no readable gold in {path}"
    return [item for item in items if item["answer"].strip()]


def _wrong(gold: str) -> str:
    """An answer in the gold's own form that is not equivalent to it."""
    text = normalize_answer(gold)
    number = text.removesuffix("%")
    try:
        value = Fraction(number)
    except (ValueError, ZeroDivisionError):
        wrong = "\\frac{12345}{7}" if gold.strip() != "\\frac{12345}{7}" else "1"
    else:
        shifted = value + 1
        wrong = str(shifted) if shifted.denominator == 1 else f"{float(shifted):g}"
        wrong += "%" if text.endswith("%") else ""
    assert not is_equivalent(wrong, gold), f"the wrong answer {wrong!r} equals the gold {gold!r}: fix _wrong"
    return wrong


def _value(answer: str) -> str:
    """The answer as a program prints it: a Python number when it is one, else the text."""
    if re.fullmatch(r"-?\d+(?:\.\d+)?", answer.strip()):
        return answer.strip()
    return "r'''" + answer.replace("'''", "") + " '''"


def _program(answer: str, trained: bool) -> str:
    if answer.strip() in ("None", "nan"):  # GSM-Plus' "None" (no answer exists): printed None is no answer at all
        return f"```python\nprint('The answer is: {answer.strip()}')\n```"
    if trained:  # a function that returns the answer, as PoT training rows write it
        return f"```python\ndef solution():\n    return {_value(answer)}\n\nprint(solution())\n```"
    return f"```python\nprint({_value(answer)})\n```"


def _scripts(name: str, items: list[dict], trained: bool, wrong: bool) -> dict[str, dict[str, str]]:
    """question -> {'cot': text, 'pot': program, 'crash': a failing program}."""
    template = TRAINED if trained else OWN_CONVENTION.get(name, BOXED)
    scripts = {}
    for item in items:
        answer = _wrong(item["answer"]) if wrong else item["answer"]
        scripts[item["question"]] = {"cot": template.format(answer=answer), "pot": _program(answer, trained),
                                     "crash": "```python\nprint(1 / 0)\n```"}
    return scripts


@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox(workers=2)
    yield box
    box.close()


def _run_style(style: str, items: list[dict], scripts: dict, sandbox, program: str = "pot") -> list[dict]:
    def script_for(prompt: str) -> dict[str, str]:
        found = [text for question, text in scripts.items() if question in prompt]
        assert found, f"no scripted completion for prompt {prompt[:80]!r}"
        return max(found, key=len)

    def complete(prompts, num_samples, sampled, max_new_tokens=None):
        out = []
        for prompt in prompts:
            script = script_for(prompt)
            if style == "tir":  # a code block first; after its output, the worded solution
                text = script["cot"] if "```output" in prompt else script["pot"] + "\n"
            elif POT_HINTS[0] in prompt:
                text = script[program]
            else:
                text = script["cot"]
            out.append([text] * num_samples)
        return out

    return predict(items, style, complete, [None], tokenizer=None, template="plain", pot_hint=POT_HINTS[0],
                   run=lambda codes: sandbox.run(codes, timeout_s=10.0),
                   open_session=lambda: sandbox.session(timeout_s=10.0), grade_timeout_s=5.0)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
@pytest.mark.parametrize("trained", [False, True], ids=["own_convention", "trained_format"])
def test_a_perfect_model_scores_100_and_a_wrong_one_0(name, trained, sandbox):
    items = _items(name)
    right, wrong = _scripts(name, items, trained, wrong=False), _scripts(name, items, trained, wrong=True)
    failures = []
    for style in STYLES:
        runs = [("perfect", right, "pot", True), ("wrong", wrong, "pot", False)]
        if style == "hybrid":  # the program fails, the chain-of-thought fallback answers
            runs += [("perfect after a crash", right, "crash", True), ("wrong after a crash", wrong, "crash", False)]
        for label, scripts, program, expected in runs:
            for line in _run_style(style, items, scripts, sandbox, program):
                if expected and line["extracted"] is None:
                    failures.append(f"{style}/{label}: {line['id']} no answer read (gold {line['gold']!r}; "
                                    f"completion {line['completion'][-80:]!r}; exec {line.get('exec')})")
                elif line["correct"] is not expected:
                    failures.append(f"{style}/{label}: {line['id']} read {line['extracted']!r} against gold "
                                    f"{line['gold']!r}: correct={line['correct']}")
    assert not failures, f"{name} ({len(items)} items): " + "\n".join(failures[:12])
