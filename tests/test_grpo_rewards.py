"""GRPO rewards on scripted completions: arithmo's grader (CoT) and sandbox (PoT), unreadable golds, threads."""

import signal
import threading
import time

import pytest

from arithmo import deadline
from arithmo.sandbox import Sandbox
from arithmo.rewards import REWARDS, Rewards, gold_problem, grade_completions


@pytest.fixture(scope="module")
def run_programs():
    with Sandbox(workers=2) as box:
        yield lambda codes: box.run(codes, timeout_s=1.0)


# (completion, gold, style, verdict); the correctness and format rewards follow from REWARDS.
CASES = [
    ("3 + 4 = 7.\nThe answer is: 7", "7", "cot", "correct"),
    ("3 + 4 = 8.\nThe answer is: 8", "7", "cot", "wrong"),
    # the strict grader: a last number is not an answer line (flexible would take it; rewards must not)
    ("3 + 4 = 7", "7", "cot", "no_answer"),
    # equivalent forms are one answer (the grader's rules, not string equality)
    ("The answer is: 0.5", "\\frac{1}{2}", "cot", "correct"),
    ("The answer is: (x+1)^2", "x^2+2x+1", "cot", "correct"),
    ("print(3 + 4)", "7", "pot", "correct"),
    ("```python\nprint(7)\n```", "7", "pot", "correct"),  # a fenced program is the program
    ("print(3 + 5)", "7", "pot", "wrong"),
    ("print(1 / 0)", "7", "pot", "exec_error"),          # a crash is wrong, never an error in training
    ("while True:\n    pass", "7", "pot", "timeout"),    # a loop is killed at program_timeout_s
    ("while True:\n    print(1)", "7", "pot", "exec_error"),  # a flood is killed at the output cap
    ("x = 7", "7", "pot", "no_answer"),                  # ran, printed nothing, no last expression
    ("I think the answer is 7.", "7", "pot", "no_program"),
    # an unreadable gold is excluded (None), never 1.0: not even for a completion that repeats it
    ("The answer is: ", "", "cot", "unreadable_gold"),
    ("print(7)", "   ", "pot", "unreadable_gold"),
    ("The answer is: 7", None, "cot", "unreadable_gold"),
]


def test_verdicts_on_scripted_completions(run_programs):
    verdicts = grade_completions([c[0] for c in CASES], [c[1] for c in CASES], [c[2] for c in CASES],
                                 run=run_programs)
    assert [v.reason for v in verdicts] == [c[3] for c in CASES]
    rewards = Rewards(run=run_programs, format_weight=0.5)
    kwargs = dict(prompts=["q"] * len(CASES), completions=[c[0] for c in CASES], answer=[c[1] for c in CASES],
                  style=[c[2] for c in CASES])
    correct, formatted = rewards.correct(**kwargs), rewards.format(**kwargs)
    assert correct == [REWARDS[c[3]][0] for c in CASES]
    assert formatted == [REWARDS[c[3]][1] for c in CASES]
    assert 1.0 not in [r for r, c in zip(correct, CASES) if c[3] == "unreadable_gold"]
    assert correct[:3] == [1.0, 0.0, 0.0] and formatted[:3] == [1.0, 1.0, 0.0]
    assert rewards.funcs == [rewards.correct, rewards.format] and rewards.weights == [1.0, 0.5]


@pytest.mark.parametrize("gold, readable", [
    ("7", True),
    ("\\frac{1}{2}", True),
    ("x^2+2x+1", True),
    ("", False),        # empty: is_equivalent would raise on it
    ("   ", False),     # whitespace only
    (None, False),      # a missing field read as null
    (7, False),         # a number where text is expected: the row should say "7"
    ("$$", False),      # nothing left for the extractor to read back
    ("\\text{}", False),  # the grader does not even match it to itself
])
def test_gold_problem(gold, readable):
    assert (gold_problem(gold) is None) is readable


def test_rewards_read_completion_ids_and_log_metrics(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = ["3 + 4 = 7 .\nThe answer is: 7", "The answer is: 9\nQuestion: next one", "no answer"]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    logged: dict[str, list[float]] = {}
    rewards = Rewards(run=None, tokenizer=tokenizer, stop=["\nQuestion:"])
    got = rewards.correct(prompts=["q"] * 3, completions=["ignored"] * 3, completion_ids=ids, answer=["7", "9", "1"],
                          style=["cot"] * 3, log_metric=lambda name, value: logged.setdefault(name, []).append(value))
    assert got == [1.0, 1.0, 0.0]
    # decoded again without clean-up (" ." kept) and cut at the stop string, as evaluation reads completions
    assert rewards.texts(["x"] * 3, ids)[:2] == ["3 + 4 = 7 .\nThe answer is: 7", "The answer is: 9"]
    assert logged["accuracy"] == [pytest.approx(2 / 3)] and logged["no_answer_rate"] == [pytest.approx(1 / 3)]
    assert logged["excluded"] == [0.0] and rewards.totals == {"correct": 2, "no_answer": 1}


def test_symbolic_grading_off_the_main_thread_uses_the_worker_process(monkeypatch):
    """TRL may call a reward from another thread (a notebook, its async loop): no SIGALRM there, the deadline
    helper's worker process runs the comparison instead."""
    calls, alarms = [], []
    real_call = deadline._WORKER.call
    monkeypatch.setattr(deadline._WORKER, "call", lambda *a, **k: calls.append(a[0]) or real_call(*a, **k))
    real_setitimer = signal.setitimer
    monkeypatch.setattr(signal, "setitimer",
                        lambda *a: alarms.append(threading.current_thread().name) or real_setitimer(*a))
    result = {}
    worker = threading.Thread(target=lambda: result.update(v=Rewards(run=None).correct(
        prompts=["q"], completions=["The answer is: (x+1)^2"], answer=["x^2+2x+1"], style=["cot"])), name="rewarder")
    worker.start()
    worker.join(60)
    assert result["v"] == [1.0]
    assert calls, "the symbolic comparison should have gone to the worker process"
    assert "rewarder" not in alarms


def test_a_time_limit_holds_off_the_main_thread():
    """The limit a reward relies on off the main thread: a 30 s call is cut at 0.5 s by killing the worker."""
    outcome = {}

    def slow() -> None:
        started = time.perf_counter()
        try:
            deadline.call_with_deadline(time.sleep, (30,), 0.5)
            outcome["raised"] = False
        except deadline.DeadlineExceeded:
            outcome["raised"] = True
        outcome["seconds"] = time.perf_counter() - started

    thread = threading.Thread(target=slow)
    thread.start()
    thread.join(60)
    # the worker's start-up (a fresh interpreter importing sympy) is not part of the limit; 25 s leaves room for it
    assert outcome["raised"] and outcome["seconds"] < 25


def test_pot_without_a_sandbox_is_an_error():
    with pytest.raises(ValueError, match="sandbox"):
        grade_completions(["print(1)"], ["1"], ["pot"], run=None)
    with pytest.raises(ValueError, match="style"):
        grade_completions(["x"], ["1"], ["hybrid"], run=None)
