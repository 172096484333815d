"""Write the RFT/GRPO CPU demo's data: two-step word problems whose chain of thought needs real arithmetic.

    python data_recipes/multistep/make_multistep.py      # rewrites the files below (deterministic, seed 15)

Templated problems written by this project (no public rows). Every step multiplies or divides a two-digit
number or subtracts from a product, so a chain-of-thought answer is only right when the model's own arithmetic
is (the tiny recipe's one-step problems are solved almost perfectly after SFT; these are not).

- `sft/train.jsonl`, `sft/val.jsonl`, `sft/manifest.json`: a built data folder of SFT records with worked CoT
  solutions (two solution orders where the steps commute, so sampled paths can differ), for
  `python -m arithmo.train data=data_recipes/multistep/sft`.
- `questions.jsonl`: further questions of the same templates with a final answer only (EvalItem records): what
  `python -m arithmo.rft` samples on and `python -m arithmo.grpo` trains on.
- `heldout.jsonl`: held-out questions (other names, other numbers; EvalItem records with meta type and level) for
  `python -m arithmo.eval benchmark=file path=data_recipes/multistep/heldout.jsonl`.

Every answer is computed here and checked against the worked solution's own last equation; no question text is
in two files (checked).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 15
NAMES = ["Ava", "Ben", "Chloe", "Dan", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack", "Kara", "Leo", "Mia", "Noah",
         "Olga", "Pablo", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wen", "Yara"]
HELD_OUT_NAMES = ["Zoe", "Omar", "Lena", "Ravi", "Nina", "Theo", "Ines", "Karl"]
ITEMS = ["apple", "marble", "sticker", "pencil", "book", "card", "shell", "coin", "cookie", "stamp"]
TEMPLATES = ("packs_left", "change", "two_groups", "share", "daily")
COUNTS = {"sft_train": 30, "sft_val": 2, "questions": 24, "heldout": 10}  # per template


def problem(template: str, rng: random.Random, names: list[str]) -> dict:
    """{question, solutions (one or two worked CoT orders), answer, template} for one template."""
    name, item = rng.choice(names), rng.choice(ITEMS)
    if template == "packs_left":
        a, b = rng.randint(3, 9), rng.randint(11, 19)
        c = rng.randint(3, min(29, a * b - 1))
        answer = a * b - c
        question = (f"{name} buys {a} packs of {b} {item}s and gives away {c} of them. How many {item}s does {name} "
                    f"have left?")
        solutions = [f"{name} buys {a} * {b} = {a * b} {item}s. After giving away {c}, {name} has {a * b} - {c} = "
                     f"{answer} {item}s left."]
    elif template == "change":
        a, b = rng.randint(2, 6), rng.randint(4, 9)
        bill = 50 if a * b < 50 else 100
        answer = bill - a * b
        question = (f"{name} buys {a} {item}s for {b} dollars each and pays with a {bill} dollar bill. How much change "
                    f"does {name} get?")
        solutions = [f"The {item}s cost {a} * {b} = {a * b} dollars. The change is {bill} - {a * b} = {answer} "
                     f"dollars."]
    elif template == "two_groups":
        a, c = rng.randint(2, 9), rng.randint(2, 9)
        b, d = rng.randint(11, 19), rng.randint(11, 19)
        answer = a * b + c * d
        question = (f"{name} has {a} boxes of {b} {item}s and {c} bags of {d} {item}s. How many {item}s does {name} "
                    f"have in total?")
        solutions = [f"The boxes hold {a} * {b} = {a * b} {item}s and the bags hold {c} * {d} = {c * d} {item}s. In "
                     f"total that is {a * b} + {c * d} = {answer} {item}s.",
                     f"The bags hold {c} * {d} = {c * d} {item}s and the boxes hold {a} * {b} = {a * b} {item}s. In "
                     f"total that is {c * d} + {a * b} = {answer} {item}s."]
    elif template == "share":
        c, each = rng.randint(3, 9), rng.randint(4, 15)
        total = c * each
        a = rng.randint(2, total - 2)
        b = total - a
        answer = each
        question = (f"{name} has {a} {item}s, buys {b} more, and shares them equally among {c} friends. How many "
                    f"{item}s does each friend get?")
        solutions = [f"{name} has {a} + {b} = {total} {item}s. Shared among {c} friends, each gets {total} / {c} = "
                     f"{answer} {item}s."]
    elif template == "daily":
        a, b, c = rng.randint(12, 29), rng.randint(3, 9), rng.randint(5, 40)
        answer = a * b + c
        question = (f"{name} reads {a} pages a day for {b} days and then {c} more pages. How many pages does {name} "
                    f"read in all?")
        solutions = [f"In {b} days {name} reads {a} * {b} = {a * b} pages. With {c} more that is {a * b} + {c} = "
                     f"{answer} pages.",
                     f"{name} reads {a} * {b} = {a * b} pages in {b} days, and {a * b} + {c} = {answer} pages with "
                     f"the {c} more."]
    else:
        raise ValueError(f"unknown template {template!r}")
    for solution in solutions:
        last = re.findall(r"= (\d+)", solution)[-1]
        if int(last) != answer:
            raise AssertionError(f"{template}: the worked solution ends at {last}, the answer is {answer}: {solution}")
    return {"question": question, "solutions": solutions, "answer": str(answer), "template": template}


def draw(count: int, rng: random.Random, names: list[str], seen: set[str]) -> list[dict]:
    """`count` problems per template, none with a question already in `seen`."""
    out = []
    for template in TEMPLATES:
        made = 0
        while made < count:
            p = problem(template, rng, names)
            if p["question"] in seen:
                continue
            seen.add(p["question"])
            out.append(p)
            made += 1
    rng.shuffle(out)
    return out


def sft_records(problems: list[dict], prefix: str, rng: random.Random) -> list[dict]:
    return [{"id": f"{prefix}/{i:04d}", "source": "multistep", "style": "cot", "prompt": p["question"],
             "completion": f"{rng.choice(p['solutions'])}\nThe answer is: {p['answer']}"}
            for i, p in enumerate(problems)]


def eval_items(problems: list[dict], prefix: str, benchmark: str) -> list[dict]:
    return [{"id": f"{prefix}/{i:04d}", "benchmark": benchmark, "question": p["question"], "answer": p["answer"],
             "meta": {"type": p["template"], "level": "two_step"}} for i, p in enumerate(problems)]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


def main() -> None:
    rng = random.Random(SEED)
    seen: set[str] = set()
    train = draw(COUNTS["sft_train"], rng, NAMES, seen)
    val = draw(COUNTS["sft_val"], rng, NAMES, seen)
    questions = draw(COUNTS["questions"], rng, NAMES, seen)
    heldout = draw(COUNTS["heldout"], rng, HELD_OUT_NAMES, seen)
    hashes = {
        "sft/train.jsonl": write_jsonl(HERE / "sft" / "train.jsonl", sft_records(train, "multistep/train", rng)),
        "sft/val.jsonl": write_jsonl(HERE / "sft" / "val.jsonl", sft_records(val, "multistep/val", rng)),
        "questions.jsonl": write_jsonl(HERE / "questions.jsonl", eval_items(questions, "multistep_q", "multistep_q")),
        "heldout.jsonl": write_jsonl(HERE / "heldout.jsonl", eval_items(heldout, "multistep", "multistep")),
    }
    texts = [{p["question"] for p in part} for part in (train, val, questions, heldout)]
    if sum(len(t) for t in texts) != len(set().union(*texts)):
        raise AssertionError("a question text is in two files")
    manifest = {"name": "multistep", "generator": "data_recipes/multistep/make_multistep.py", "seed": SEED,
                "templates": list(TEMPLATES), "per_template": COUNTS,
                "rows": {"train": len(train), "val": len(val), "questions": len(questions), "heldout": len(heldout)},
                "sha256": hashes}
    (HERE / "sft" / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest["rows"]))


if __name__ == "__main__":
    main()
