"""Write tiny_longcot/openr1_tiny.jsonl: templated word problems with reasoning traces in OpenR1-Math-220k's schema
(one verified generation each, `<think>...</think>` then a boxed answer), for the CPU long-CoT demo and tests.
Deterministic: `python data_recipes/make_tiny_longcot.py`. Every answer is computed here."""

import json
import random
from pathlib import Path

OUT = Path(__file__).parent / "tiny_longcot" / "openr1_tiny.jsonl"
NAMES = ["Ava", "Ben", "Cleo", "Dev", "Elif", "Farid", "Gus", "Hana", "Ivo", "Juno"]
THINGS = ["marbles", "stamps", "shells", "pencils", "cards"]


def row(i: int, rng: random.Random) -> dict:
    name, thing = NAMES[i % len(NAMES)], THINGS[(i // len(NAMES)) % len(THINGS)]
    a, b = rng.randint(3, 40), rng.randint(2, 30)
    if i % 2:
        problem = f"{name} collects {a} {thing} and then finds {b} more. How many {thing} does {name} have?"
        steps = [f"{name} starts with {a} {thing}.", f"Finding {b} more means adding: {a} + {b}.",
                 f"{a} + {b} = {a + b}.", f"Check: {a + b} - {b} = {a}, which matches the start."]
        answer = a + b
    else:
        a = a + b  # keep the difference positive
        problem = f"{name} had {a} {thing} and gave away {b} of them. How many {thing} are left?"
        steps = [f"{name} starts with {a} {thing}.", f"Giving away {b} means subtracting: {a} - {b}.",
                 f"{a} - {b} = {a - b}.", f"Check: {a - b} + {b} = {a}, which matches the start."]
        answer = a - b
    trace = "Let me work through this step by step.\n" + "\n".join(steps)
    generation = f"<think>\n{trace}\n</think>\n\n{name} has $\\boxed{{{answer}}}$ {thing}."
    return {"problem": problem, "solution": f"The answer is ${answer}$.", "answer": str(answer),
            "problem_type": "Arithmetic", "question_type": "math-word-problem", "source": "arithmo_tiny",
            "uuid": f"tiny-{i}", "is_reasoning_complete": [True], "generations": [generation],
            "correctness_math_verify": [True], "correctness_llama": None, "finish_reasons": ["stop"],
            "correctness_count": 1, "messages": [{"role": "user", "content": problem},
                                                 {"role": "assistant", "content": generation}]}


if __name__ == "__main__":
    rng = random.Random(27)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("".join(json.dumps(row(i, rng)) + "\n" for i in range(48)))
    print(f"wrote {OUT}")
