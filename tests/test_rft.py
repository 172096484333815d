"""RFT: manifest balance, difficulty-aware stopping, resume, and the recipe end to end on a tiny random model."""

import json
import random

import pytest

from arithmo.config import ConfigError, load_config
from arithmo.io import DataError
from arithmo.rewards import gold_problem, grade_completions
from arithmo.rft import RFTConfig, RFTError, resolve_preset, rft
from arithmo.rft.sampling import AFTER_CORRECT, Task, read_rounds, sample_tasks, select_solutions, totals

from _shared import write_sft_folder

RIGHT_A = "2 * 3 = 6, then 6 + 4 = 10.\nThe answer is: 10"
RIGHT_B = "6 + 4 is 10 after 2 * 3 = 6, so 2 * 3 + 4 = 10.\nThe answer is: 10"  # another equation list
WRONG = "2 * 3 = 5, then 5 + 4 = 9.\nThe answer is: 9"
LUCKY = "2 * 3 = 5, then 5 + 5 = 10.\nThe answer is: 10"  # the right answer by wrong arithmetic: not kept
# What the scripted model answers, per question: it draws from its pool at random (seeded per round).
POOLS = {
    "easy": [RIGHT_A],                       # always right, always the same path
    "mixed": [RIGHT_A, RIGHT_B, WRONG, "10", LUCKY],  # "10" alone has no answer line: no_answer
    "hard": [WRONG] * 11 + [RIGHT_B],        # right about once in 12 samples
    "never": [WRONG],
    "blank": [RIGHT_A],                      # its gold cannot be read: never sampled
}


def _tasks():
    items = [{"id": name, "question": f"question {name}: what is 2 * 3 + 4?", "answer": "" if name == "blank" else "10"}
             for name in POOLS]
    return [Task(item=item, style="cot", prompt=item["question"], gold_problem=gold_problem(item["answer"]))
            for item in items]


class Scripted:
    """A stand-in model: each prompt's completions drawn from its pool with the round's seed; counts calls."""

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after = 0, fail_after

    def __call__(self, prompts, k, seed):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("the machine went down")
        self.calls += 1
        out = []
        for prompt in prompts:
            name = prompt.split()[1].rstrip(":")
            rng = random.Random(f"{seed}/{name}")
            out.append([rng.choice(POOLS[name]) for _ in range(k)])
        return out


def _grade(completions, golds, styles):
    return grade_completions(completions, golds, styles, run=None)


def _run(tmp_path, name="samples.jsonl", complete=None, **kwargs):
    return sample_tasks(_tasks(), complete=complete or Scripted(), grade=_grade, store=tmp_path / name, chunk=1,
                        **kwargs)


def test_fixed_mode_accounts_for_every_sample(tmp_path):
    tasks = _tasks()
    rounds = _run(tmp_path, k=4)
    records, accounts = select_solutions(tasks, rounds, k=4)
    by_id = {a["id"]: a for a in accounts}
    assert list(by_id) == list(POOLS)  # every question, in order, the unreadable one too
    assert by_id["blank"]["stopped"] == "unreadable_gold" and by_id["blank"]["sampled"] == 0
    assert by_id["easy"] == {**by_id["easy"], "rounds": 1, "sampled": 4, "correct": 4, "kept": 1,
                             "stopped": "k_samples"}
    assert by_id["easy"]["dropped"]["duplicate"] == 3  # one path, drawn four times
    assert by_id["never"]["kept"] == 0 and by_id["never"]["dropped"]["wrong"] == 4
    for account in accounts:  # the balance every account keeps
        failures = sum(v for reason, v in account["dropped"].items() if reason not in AFTER_CORRECT)
        assert account["sampled"] == account["correct"] + failures
        assert account["correct"] == account["kept"] + account["dropped"]["duplicate"] \
            + account["dropped"]["wrong_equation"]
    total = totals(accounts)
    assert total["sampled"] == sum(a["sampled"] for a in accounts) == 16
    assert total["kept"] == len(records) == sum(a["kept"] for a in accounts)
    assert total["stopped"] == {"k_samples": 4, "unreadable_gold": 1}
    assert all(set(r) == {"id", "source", "style", "prompt", "completion"} for r in records)
    assert len({r["id"] for r in records}) == len(records)
    # a sample the same as the original data's solution (by equation list) is a duplicate too
    known = {(t.item["question"], "cot"): {("2*3=6", "6+4=10")} for t in tasks}
    _, with_original = select_solutions(tasks, rounds, k=4, known=known)
    assert {a["id"]: a["kept"] for a in with_original}["easy"] == 0


def test_right_answer_by_wrong_arithmetic_is_not_kept(tmp_path):
    task = _tasks()[1]  # "mixed"
    rounds = {task.key: [[{"completion": LUCKY, "reason": "correct", "program": None},
                          {"completion": RIGHT_B, "reason": "correct", "program": None}]]}
    records, [account] = select_solutions([task], rounds, k=2)
    assert account["dropped"]["wrong_equation"] == 1 and account["kept"] == 1 and records[0]["completion"] == RIGHT_B
    # with the check off (check_equations=false), the lucky path is kept as Yuan et al.'s answer filter alone would
    records, [account] = select_solutions([task], rounds, k=2, check_equations=False)
    assert account["kept"] == 2 and account["dropped"]["wrong_equation"] == 0


def test_difficulty_aware_sampling_stops_per_question(tmp_path):
    rounds = _run(tmp_path, k=2, min_correct=2, max_trials=12)
    _, accounts = select_solutions(_tasks(), rounds, k=2, min_correct=2, max_trials=12)
    by_id = {a["id"]: a for a in accounts}
    assert by_id["easy"]["rounds"] == 1 and by_id["easy"]["stopped"] == "min_correct"  # 2 right at once
    assert by_id["never"]["sampled"] == 12 and by_id["never"]["stopped"] == "max_trials"  # the cap
    assert by_id["hard"]["sampled"] > by_id["easy"]["sampled"]  # hard questions get more trials
    for account in accounts[:-1]:
        assert account["stopped"] == ("min_correct" if account["correct"] >= 2 else "max_trials")
        assert account["correct"] < 2 or account["correct"] - 2 < 2  # stops in the round that reaches it
        assert account["sampled"] % 2 == 0 and account["sampled"] <= 12
    # the fixed mode on the same questions would give "hard" only 2 trials
    assert select_solutions(_tasks(), _run(tmp_path, "fixed.jsonl", k=2), k=2)[1][2]["sampled"] == 2


@pytest.mark.parametrize("k, min_correct, max_trials, match", [
    (2, 2, None, "max_trials"),   # difficulty-aware without a cap could sample forever
    (2, 2, 5, "multiple of k"),   # rounds are whole
    (2, None, 8, "min_correct"),  # a cap without the mode it belongs to
    (0, None, None, "k"),
])
def test_budget_errors(k, min_correct, max_trials, match):
    with pytest.raises(ConfigError, match=match):
        load_config(RFTConfig, None, [f"k={k}", f"min_correct={min_correct if min_correct else 'null'}",
                                      f"max_trials={max_trials if max_trials else 'null'}"])


def test_resume_continues_where_it_stopped(tmp_path):
    whole = _run(tmp_path, "whole.jsonl", k=2, min_correct=2, max_trials=12)
    crashing = Scripted(fail_after=3)
    with pytest.raises(RuntimeError, match="went down"):
        _run(tmp_path, "resumed.jsonl", crashing, k=2, min_correct=2, max_trials=12)
    saved, _ = read_rounds(tmp_path / "resumed.jsonl")
    assert sum(len(r) for r in saved.values()) == 3  # each finished round was saved as it ended
    again = Scripted()
    resumed = _run(tmp_path, "resumed.jsonl", again, k=2, min_correct=2, max_trials=12)
    assert resumed == whole  # the same samples as an unbroken run (seeds per task and round)
    assert again.calls == sum(len(r) for r in whole.values()) - 3  # only the rounds still due
    # a crash mid-write leaves a cut last line: it is dropped (that round is sampled again), and said so
    store = tmp_path / "resumed.jsonl"
    store.write_text(store.read_text() + '{"id": "easy", "style": "cot", "rou')
    rounds, truncated = read_rounds(store)
    assert truncated == 1 and rounds == whole and store.read_text().endswith("\n")
    store.write_text('{"id": "easy"\n' + store.read_text())
    with pytest.raises(DataError, match=":1: not valid JSON"):
        read_rounds(store)


# ---------------------------------------------------------------------------------------------- the recipe


def _cfg(tmp_path, model_dir, **overrides):
    items = [{"id": f"q{i}", "question": f"Sam has {i} apples and gets 3 more. How many apples?", "answer": str(i + 3)}
             for i in range(3)] + [{"id": "blank", "question": "What is it?", "answer": ""}]  # an empty gold
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    base = [f"out={tmp_path / 'rft'}", f"model={model_dir}", "engine=hf", "backend=hf", "load_in_4bit=false",
            "dtype=float32", "benchmark=file", f"path={path}", "styles=[cot, pot]", "k=2", "max_new_tokens=8",
            "workers=1", "program_timeout_s=2"]
    return load_config(RFTConfig, None, base + [f"{k}={v}" for k, v in overrides.items()])


def test_recipe_writes_a_data_folder_that_accounts_for_every_question(tmp_path, tiny_model_dir, monkeypatch):
    from arithmo.rft import recipe
    from arithmo.sft import read_sft_file

    mix = write_sft_folder(tmp_path / "sft", n_train=6, n_val=2)
    manifest = rft(_cfg(tmp_path, tiny_model_dir, mix=str(mix)))
    out = tmp_path / "rft"
    t = manifest["totals"]
    assert len(manifest["per_task"]) == 8 and t["tasks"] == 8  # 4 questions x 2 styles
    assert manifest["questions"]["unreadable_gold"] == 1 and t["stopped"] == {"k_samples": 6, "unreadable_gold": 2}
    assert t["sampled"] == 12 == t["correct"] + sum(v for r, v in t["dropped"].items() if r not in AFTER_CORRECT)
    assert t["by_style"]["pot"]["sampled"] == 6
    rows = read_sft_file(out / "train.jsonl")
    assert len(rows) == 6 + t["kept"] and [r["id"] for r in rows[:6]] == [f"t/{i}" for i in range(6)]
    assert len(read_sft_file(out / "val.jsonl")) == 2 and manifest["mix"]["train_rows"] == 6
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and all(len(line["samples"]) == 2 for line in lines)
    pot = [s for line in lines if line["style"] == "pot" for s in line["samples"]]
    assert all(s["reason"] in ("no_program", "no_answer", "exec_error", "wrong", "correct") for s in pot)
    # a rerun resumes: nothing left to sample, so no model is loaded, and the same folder comes out
    monkeypatch.setattr(recipe, "load_sampler", lambda *a: pytest.fail("nothing should be sampled again"))
    before = (out / "train.jsonl").read_text()
    assert rft(_cfg(tmp_path, tiny_model_dir, mix=str(mix)))["totals"]["sampled"] == 12
    assert (out / "train.jsonl").read_text() == before
    # other settings would mix two kinds of samples in one folder: refused, naming the key
    with pytest.raises(RFTError, match="temperature"):
        rft(_cfg(tmp_path, tiny_model_dir, temperature=0.9))


def test_presets_resolve():
    cpu = load_config(RFTConfig, resolve_preset("smollm2_cpu"))
    assert cpu.benchmark == "file" and cpu.path
    gsm8k = load_config(RFTConfig, resolve_preset("gsm8k_7b"))
    assert gsm8k.split == "train" and gsm8k.min_correct is not None


class Interrupted(Scripted):
    """Ctrl-C arrives during call number `at` (0-based), as a terminal's SIGINT reaches generate."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def __call__(self, prompts, k, seed):
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().__call__(prompts, k, seed)


# (the generation call Ctrl-C interrupts, round lines saved, what the Ctrl-C line says); pitfall (issue 31): RFT
# showed nothing until a chunk of 64 tasks ended and a Ctrl-C left no samples.jsonl and no word on what was kept
RFT_CTRL_C = [
    (0, 0, "nothing saved this session"),          # inside the first round: must NOT claim a saved file
    (2, 2, "2 round line(s) saved in"),            # the third round: the first two are on disk
]


@pytest.mark.parametrize("at, lines, said", RFT_CTRL_C)
def test_rft_ctrl_c_keeps_the_finished_rounds_and_says_so(tmp_path, capsys, at, lines, said):
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, complete=Interrupted(at), k=2, progress=True)
    err = capsys.readouterr().err
    assert f"Ctrl-C: {said}" in err, err
    assert "tasks already done; sampling" in err  # progress from the start, not after the first chunk
    store = tmp_path / "samples.jsonl"
    assert (len(store.read_text().splitlines()) if store.exists() else 0) == lines
    rounds = _run(tmp_path, k=2)  # resume: the saved rounds count, the rest is drawn
    assert sum(len(r) for r in rounds.values()) == len(POOLS) - 1


def test_an_rft_run_that_keeps_nothing_is_an_error_with_the_counts(tmp_path, monkeypatch, tiny_model_dir):
    # pitfall (issue 31 review): every sample wrong -> "wrote train.jsonl (0 rows ...) Train: python -m arithmo.train
    # data=...", exit 0, and that command then failed with "holds no rows"
    import json as _json

    from arithmo.config import load_config
    from arithmo.rft.recipe import RFTConfig, RFTError, rft

    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(_json.dumps({"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)})
                                 + "\n" for i in range(3)))
    monkeypatch.setattr("arithmo.rft.recipe.load_sampler",
                        lambda cfg, backend: lambda prompts, k, seed: [["The answer is: 99"] * k for _ in prompts])
    cfg = load_config(RFTConfig, None, [f"model={tiny_model_dir}", "benchmark=file", f"path={questions}", "k=2",
                                        "styles=[cot]", f"out={tmp_path / 'rft'}", "backend=hf"])
    with pytest.raises(RFTError, match=r"no training row: 6 samples of 3 tasks, 0 correct, 0 kept"):
        rft(cfg)
    assert (tmp_path / "rft" / "samples.jsonl").read_text().count("\n") == 3  # kept for a resume
