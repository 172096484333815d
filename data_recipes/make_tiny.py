"""Write the tiny recipe's source files: templated word problems with checked answers.

    python data_recipes/make_tiny.py            # rewrites data_recipes/tiny/*.jsonl (deterministic)

Synthetic rows, written by this project, in each real source's exact schema (MetaMathQA, MathInstruct
CoT + PoT, Lila), plus a held-out evaluation set drawn from the same templates with other names and
numbers. Every answer is computed, and every program is run here and must print that answer.
A few rows are deliberately unusable or repeated so a build exercises every drop reason.

The task is one a 135M-parameter model can learn in minutes on a CPU: a PoT completion only has to
copy the numbers into a short program (the sandbox does the arithmetic), and a CoT completion states
the same operation in words.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent / "tiny"
NAMES = ["Ava", "Ben", "Chloe", "Dan", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack", "Kara", "Leo",
         "Mia", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wen", "Yara"]
HELD_OUT_NAMES = ["Zoe", "Omar", "Lena", "Ravi", "Nina", "Theo", "Ines", "Karl"]
ITEMS = ["apple", "marble", "sticker", "pencil", "book", "card", "shell", "coin", "cookie", "stamp"]


def _problem(template: str, rng: random.Random, names: list[str]) -> dict:
    """One problem: question, CoT solution, PoT program and the answer, for a template name."""
    name, item = rng.choice(names), rng.choice(ITEMS)
    a, b, c = rng.randint(2, 60), rng.randint(2, 30), rng.randint(2, 9)
    if template == "add":
        q = f"{name} has {a} {item}s and gets {b} more. How many {item}s does {name} have now?"
        ans = a + b
        cot = f"{name} starts with {a} {item}s and gets {b} more, so {name} has {a} + {b} = {ans} {item}s."
        pot = f"start = {a}\nmore = {b}\ntotal = start + more\nprint(total)"
    elif template == "sub":
        a = a + b
        q = f"{name} has {a} {item}s and gives away {b} of them. How many {item}s are left?"
        ans = a - b
        cot = f"{name} has {a} {item}s and gives away {b}, leaving {a} - {b} = {ans} {item}s."
        pot = f"start = {a}\ngiven = {b}\nleft = start - given\nprint(left)"
    elif template == "mul":
        q = f"A box holds {c} {item}s. How many {item}s are in {b} boxes?"
        ans = b * c
        cot = f"Each box holds {c} {item}s, so {b} boxes hold {b} * {c} = {ans} {item}s."
        pot = f"per_box = {c}\nboxes = {b}\ntotal = per_box * boxes\nprint(total)"
    elif template == "div":
        total = b * c
        q = f"{name} shares {total} {item}s equally among {c} friends. How many {item}s does each friend get?"
        ans = b
        cot = f"{total} {item}s shared among {c} friends gives {total} / {c} = {ans} {item}s each."
        pot = f"total = {total}\nfriends = {c}\neach = total // friends\nprint(each)"
    elif template == "two_step":
        q = f"{name} has {a} {item}s and buys {c} packs with {b} {item}s in each pack. How many {item}s does {name} have in total?"
        ans = a + b * c
        cot = (f"The packs hold {c} * {b} = {b * c} {item}s. Together with the {a} {name} already has, "
               f"that is {a} + {b * c} = {ans} {item}s.")
        pot = f"start = {a}\npacks = {c}\nper_pack = {b}\ntotal = start + packs * per_pack\nprint(total)"
    else:
        raise ValueError(f"unknown template {template!r}")
    return {"question": q, "cot": cot, "pot": pot, "answer": str(ans), "template": template}


TEMPLATES = ["add", "sub", "mul", "div", "two_step"]


def _check(problem: dict) -> None:
    """Our own generated program (trusted code): it must print exactly the computed answer."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(problem["pot"], {})  # noqa: S102 - generator-written code, never model output
    if buffer.getvalue().strip() != problem["answer"]:
        raise AssertionError(f"program prints {buffer.getvalue()!r}, expected {problem['answer']}: {problem}")


def _problems(count: int, rng: random.Random, names: list[str], seen: set[str]) -> list[dict]:
    out = []
    while len(out) < count:
        problem = _problem(TEMPLATES[len(out) % len(TEMPLATES)], rng, names)
        if problem["question"] in seen:
            continue
        seen.add(problem["question"])
        _check(problem)
        out.append(problem)
    return out


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(1234)
    HERE.mkdir(exist_ok=True)
    seen: set[str] = set()
    held_out = _problems(60, random.Random(99), HELD_OUT_NAMES, seen)
    train = _problems(700, rng, NAMES, seen)
    meta_rows, inst_rows, lila_rows = train[:200], train[200:450], train[450:]

    metamathqa = [{"query": p["question"], "response": f"{p['cot']}\nThe answer is: {p['answer']}",
                   "type": "GSM_AnsAug", "original_question": p["question"]} for p in meta_rows]
    # An unusable row (empty query) and an exact repeat: the build must count both.
    metamathqa.append({"query": "", "response": "The answer is: 1", "type": "GSM_AnsAug", "original_question": ""})
    metamathqa.append(dict(metamathqa[0]))

    mathinstruct = []
    for i, p in enumerate(inst_rows):
        if i % 2 == 0:  # CoT, in the two tails MathInstruct uses: "The answer is X" and GSM8K's "#### X"
            tail = f"The answer is {p['answer']}." if i % 4 == 0 else f"#### {p['answer']}"
            mathinstruct.append({"instruction": p["question"], "output": f"{p['cot']}\n{tail}",
                                 "source": "data/CoT/tiny_synthetic.json"})
        else:  # PoT, with one of MathInstruct's stock trigger sentences
            trigger = ["Let's write a Python program to solve it.", "Please write a program to solve it",
                       "Let's program in Python in the response."][i % 3]
            mathinstruct.append({"instruction": f"{p['question']} {trigger}", "output": p["pot"],
                                 "source": "data/PoT/tiny_synthetic.json"})
    # A near-duplicate of a MetaMathQA row (same problem, one word changed, same solution).
    first = meta_rows[0]
    mathinstruct.append({"instruction": first["question"].replace(" now?", " now ?"),
                         "output": f"{first['cot']}\nThe answer is: {first['answer']}",
                         "source": "data/CoT/tiny_synthetic.json"})

    splits = ["train"] * 8 + ["dev", "test"]
    lila = []
    for i, p in enumerate(lila_rows):
        # Every 7th program stops at its last assignment and prints nothing; the build appends a print.
        program = p["pot"].rsplit("\nprint(", 1)[0] if i % 7 == 1 else p["pot"]
        lila.append({"input": p["question"], "output_program": program, "output_answer": p["answer"],
                     "dataset": "tiny_synthetic", "split": splits[i % len(splits)]})

    held = [{"id": f"tiny/{i:03d}", "benchmark": "tiny", "question": p["question"], "answer": p["answer"],
             "meta": {"type": p["template"], "level": "two_step" if p["template"] == "two_step" else "one_step"}}
            for i, p in enumerate(held_out)]
    _write(HERE / "metamathqa.jsonl", metamathqa)
    _write(HERE / "mathinstruct.jsonl", mathinstruct)
    _write(HERE / "lila.jsonl", lila)
    _write(HERE / "heldout.jsonl", held)
    print(f"wrote {HERE}: metamathqa {len(metamathqa)}, mathinstruct {len(mathinstruct)}, lila {len(lila)}, "
          f"heldout {len(held)}")


if __name__ == "__main__":
    main()
