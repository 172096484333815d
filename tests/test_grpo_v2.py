"""GRPO v2 (issue 28) on CPU: the loss knobs reach TRL and bad values are refused, DAPO's overlong shaping and
dynamic sampling, the pass-rate curriculum. The vLLM rollout runs in tests/test_grpo_vllm.py (make test-vllm)."""

import json
import math
import zlib

import pytest

from arithmo.config import ConfigError, load_config
from arithmo.curriculum import read_pass_rates, select_by_pass_rate
from arithmo.dynamic_sampling import all_equal_groups, merge_batches
from arithmo.grpo import GRPOTrainConfig, grpo
from arithmo.io import DataError
from arithmo.rewards import Verdict, overlong_penalty
from arithmo.trainlog import read_train_log

# ----------------------------------------------------------------------------------------------
# config: (overrides, the error's words or None for a config that must load)

CONFIG_ROWS = [
    # the loss knobs' allowed sets and ranges, each refused with the key named
    (["loss_type=ppo"], "loss_type: expected one of 'grpo', 'dr_grpo', 'dapo', 'bnpo', 'cispo', 'sapo', got 'ppo'"),
    (["importance_sampling_level=tokens"], "importance_sampling_level: expected one of 'token', 'sequence'"),
    (["epsilon=0"], "epsilon: expected 0 < epsilon < 1"),
    (["epsilon=1.0"], "epsilon: expected 0 < epsilon < 1"),  # 1 - epsilon = 0: nothing clipped below
    (["epsilon_high=0.1"], "epsilon_high: expected >= epsilon=0.2"),  # clip-higher is wider, not narrower
    # pitfall: TRL caps cispo's importance weight at epsilon_high itself: the default (0.2) would cap every ratio
    (["loss_type=cispo"], "epsilon_high: loss_type=cispo caps the importance weight"),
    (["loss_type=cispo", "epsilon_high=0.28"], "expected a value > 1, got 0.28"),
    # GSPO's sequence ratio under a token-sum loss counts a sequence once per token (TRL only warns)
    (["importance_sampling_level=sequence"], "importance_sampling_level=sequence (GSPO) with loss_type=dapo"),
    (["importance_sampling_level=sequence", "loss_type=bnpo"], "with loss_type=bnpo"),
    (["beta=-0.1"], "beta"),
    (["scale_rewards=std"], "scale_rewards: expected one of 'group', 'batch', 'none'"),
    (["mask_truncated_completions=maybe"], "mask_truncated_completions"),
    (["rollout=tgi"], "rollout: expected one of 'hf', 'vllm', got 'tgi'"),
    (["vllm_gpu_memory_utilization=1.5"], "vllm_gpu_memory_utilization: expected a share of the card in (0, 1)"),
    (["vllm_quantization=gptq"], "vllm_quantization: expected one of 'auto', 'none', 'bitsandbytes'"),
    (["overlong_buffer=512"], "overlong_buffer: expected 0 (off) up to max_completion_length - 1 = 511"),
    (["overlong_buffer=-1"], "overlong_buffer"),
    (["overlong_penalty=-1"], "overlong_penalty: expected >= 0"),
    (["dynamic_sampling_rounds=-1"], "dynamic_sampling_rounds: expected >= 1 with dynamic_sampling=true"),
    (["curriculum=x", "min_pass_rate=1.5"], "min_pass_rate: expected a rate in [0, 1], got 1.5"),
    (["curriculum=x", "min_pass_rate=0.8", "max_pass_rate=0.2"], "min_pass_rate=0.8 > max_pass_rate=0.2"),
    (["min_pass_rate=0.1"], "need curriculum="),  # bounds without a source of rates would silently do nothing
    (["curriculum_unmatched=keep"], "need curriculum="),
    # must NOT be refused: each knob at a legal value
    (["loss_type=grpo"], None),
    (["loss_type=dr_grpo", "scale_rewards=none"], None),
    (["loss_type=bnpo"], None),
    (["loss_type=cispo", "epsilon_high=5.0"], None),
    (["loss_type=sapo"], None),
    (["loss_type=grpo", "importance_sampling_level=sequence"], None),
    (["loss_type=sapo", "importance_sampling_level=sequence"], None),
    (["epsilon_high=0.28"], None),
    (["epsilon_high=0.2"], None),  # equal to epsilon: symmetric, allowed
    (["beta=0.04"], None),
    (["mask_truncated_completions=true"], None),
    (["rollout=vllm", "vllm_sleep=false", "vllm_quantization=none"], None),
    (["overlong_buffer=128", "overlong_penalty=0.5"], None),
    (["dynamic_sampling=true", "dynamic_sampling_rounds=1"], None),
    (["dynamic_sampling=false", "dynamic_sampling_rounds=0"], None),  # rounds matter only with refilling on
    (["curriculum=runs/rft", "min_pass_rate=0.1", "max_pass_rate=0.9", "curriculum_unmatched=keep"], None),
]


@pytest.mark.parametrize("overrides, error", CONFIG_ROWS, ids=[" ".join(r[0]) for r in CONFIG_ROWS])
def test_config_rows(overrides, error):
    if error is None:
        cfg = load_config(GRPOTrainConfig, None, overrides)
        for text in overrides:
            key, value = text.split("=", 1)
            assert str(getattr(cfg, key)).lower() == value.lower() or getattr(cfg, key) == float(value)
    else:
        with pytest.raises(ConfigError) as info:
            load_config(GRPOTrainConfig, None, overrides)
        assert error in str(info.value)


def test_help_names_each_knobs_source():
    from arithmo.config import describe

    lines = "\n".join(describe(GRPOTrainConfig))
    for key, source in [("loss_type", "2503.14476"), ("loss_type", "2503.20783"), ("loss_type", "2506.13585"),
                        ("loss_type", "2511.20347"), ("importance_sampling_level", "2507.18071"),
                        ("epsilon_high", "DAPO"), ("beta", "2402.03300"), ("mask_truncated_completions", "DAPO"),
                        ("dynamic_sampling", "sec. 3.2"), ("overlong_buffer", "eq. 13"), ("rollout", "LoRA")]:
        line = next(line for line in lines.splitlines() if line.strip().startswith(key + " "))
        assert source in line, (key, source)


def test_the_cli_error_comes_before_torch_loads():
    import subprocess
    import sys

    code = ("import sys; from arithmo.grpo import main; rc = main(['loss_type=cispo']); "
            "print('torch' in sys.modules, rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "2"], done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: epsilon_high: loss_type=cispo caps the importance weight itself at epsilon_high (MiniMax-M1; "
        "ScaleRL uses 5.0): expected a value > 1, got None"]


# ----------------------------------------------------------------------------------------------
# DAPO overlong shaping (eq. 13): (length, max, buffer, penalty, expected)

OVERLONG_ROWS = [
    (0, 100, 20, 1.0, 0.0),
    (80, 100, 20, 1.0, 0.0),      # at the start of the buffer: not yet punished
    (81, 100, 20, 1.0, -0.05),    # one token in: 1/20 of the penalty
    (90, 100, 20, 1.0, -0.5),
    (100, 100, 20, 1.0, -1.0),    # cut at the limit: the whole penalty
    (130, 100, 20, 1.0, -1.0),    # beyond: never more than the penalty
    (90, 100, 20, 0.5, -0.25),    # scaled by overlong_penalty
    (100, 100, 0, 1.0, 0.0),      # must NOT punish: buffer 0 is off
    (99, 100, 1, 1.0, 0.0),       # must NOT punish below the (one-token) buffer
]


@pytest.mark.parametrize("length, max_length, buffer, penalty, expected", OVERLONG_ROWS)
def test_overlong_penalty(length, max_length, buffer, penalty, expected):
    assert overlong_penalty(length, max_length, buffer, penalty) == pytest.approx(expected)


@pytest.mark.parametrize("args", [(-1, 100, 20, 1.0), (10, 100, 100, 1.0), (10, 100, -1, 1.0), (10, 100, 20, -1)])
def test_overlong_penalty_refuses_bad_arguments(args):
    with pytest.raises(ValueError, match="overlong_penalty"):
        overlong_penalty(*args)


def test_rewards_add_the_overlong_term_only_when_on():
    from arithmo.rewards import Rewards

    off = Rewards(run=None, max_completion_length=10)
    on = Rewards(run=None, max_completion_length=10, overlong_buffer=4, overlong_penalty=0.5)
    assert [f.__name__ for f in off.funcs] == ["correct"] and off.weights == [1.0]
    assert [f.__name__ for f in on.funcs] == ["correct", "overlong"] and on.weights == [1.0, 1.0]
    logged = {}
    values = on.overlong([], [], completion_ids=[[1] * 5, [1] * 8, [1] * 10],
                         log_metric=lambda k, v: logged.__setitem__(k, v))
    assert values == [0.0, pytest.approx(-0.25), -0.5] and logged == {"overlong_rate": pytest.approx(2 / 3)}


# ----------------------------------------------------------------------------------------------
# dynamic sampling: which groups carry no gradient; (rewards, group size, expected flags)

NAN = math.nan
GROUP_ROWS = [
    ([1, 1, 1, 1], 4, [True]),                 # all right
    ([0, 0, 0, 0], 4, [True]),                 # all wrong
    ([NAN, NAN, NAN, NAN], 4, [True]),         # all unscorable: TRL gives them zero advantage
    ([1, 1, NAN, 1], 4, [True]),               # the scorable ones equal: no advantage either
    ([1, 0, 0, 0], 4, [False]),                # must NOT drop: one right answer is the signal
    ([0.1, 0.1, 0.1, 0.1000001], 4, [True]),   # within float noise
    ([0.0, 0.0, 0.0, -0.05], 4, [False]),      # must NOT drop: an overlong penalty differs
    ([1, 0, 1, 1, 0, 0], 2, [False, True, True]),  # consecutive groups, each on its own
    ([1, 1, 0, 0], 2, [True, True]),           # must NOT compare across groups
]


@pytest.mark.parametrize("rewards, size, expected", GROUP_ROWS)
def test_all_equal_groups(rewards, size, expected):
    assert all_equal_groups(rewards, size) == expected


def test_all_equal_groups_needs_whole_groups():
    with pytest.raises(ValueError, match="do not split"):
        all_equal_groups([1, 0, 1], 2)


def test_merge_batches_pads_prompts_left_and_completions_right():
    import torch

    pad = 9
    a = {"prompt_ids": torch.tensor([[1, 2], [3, 4]]), "prompt_mask": torch.ones(2, 2, dtype=torch.long),
         "completion_ids": torch.tensor([[5, pad, pad], [6, 7, 8]]),
         "completion_mask": torch.tensor([[1, 0, 0], [1, 1, 1]]), "advantages": torch.tensor([0.5, -0.5]),
         "num_items_in_batch": torch.tensor(4)}
    b = {"prompt_ids": torch.tensor([[1, 2, 3]]), "prompt_mask": torch.ones(1, 3, dtype=torch.long),
         "completion_ids": torch.tensor([[7]]), "completion_mask": torch.tensor([[1]]),
         "advantages": torch.tensor([1.0]), "num_items_in_batch": torch.tensor(1)}
    merged = merge_batches([(a, [1]), (b, [0])], pad)
    assert merged["prompt_ids"].tolist() == [[pad, 3, 4], [1, 2, 3]]           # left padding keeps prompts adjacent
    assert merged["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert merged["completion_ids"].tolist() == [[6, 7, 8], [7, pad, pad]]     # right padding
    assert merged["completion_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert merged["advantages"].tolist() == [-0.5, 1.0]
    assert int(merged["num_items_in_batch"]) == 4  # recounted over the kept rows, not summed from the parts (5)
    with pytest.raises(ValueError, match="pixel_values"):
        merge_batches([({**b, "pixel_values": torch.zeros(1, 3)}, [0])], pad)


# ----------------------------------------------------------------------------------------------
# the recipe on the tiny model: every loss type trains a step; dynamic sampling counts and refills


def _cfg(tmp_path, model_dir, n=6, **overrides):
    items = [{"id": f"q{i}", "question": f"Sam has {i} apples and gets 3 more. How many apples?",
              "answer": str(i + 3)} for i in range(n)]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    base = [f"output_dir={tmp_path / 'runs'}", "name=g", f"model.name={model_dir}", "model.engine=hf",
            "model.load_in_4bit=false", "model.dtype=float32", "model.max_seq_length=128",
            "model.gradient_checkpointing=false", "benchmark=file", f"path={path}", "num_generations=4",
            "micro_batch_size=8", "max_completion_length=8", "max_steps=1", "lr=5e-2", "save_steps=5"]
    return load_config(GRPOTrainConfig, None, base + [f"{k}={v}" for k, v in overrides.items()])


def _script(monkeypatch, solved=()):
    """Verdicts by a hash of the completion, except questions whose gold is in `solved`: always correct."""
    import arithmo.rewards

    def scripted(completions, golds, styles, *, run, grade_timeout_s=2.0, prompts=None):
        return [Verdict("correct" if gold in solved or zlib.crc32(text.encode()) % 2 else "wrong")
                for text, gold in zip(completions, golds)]

    monkeypatch.setattr(arithmo.rewards, "grade_completions", scripted)


LOSS_ROWS = [  # (overrides, a metric only that loss logs, or None)
    ({"loss_type": "grpo", "importance_sampling_level": "sequence"}, "clip_ratio/region_mean"),
    ({"loss_type": "dr_grpo", "scale_rewards": "none"}, "clip_ratio/region_mean"),
    ({"loss_type": "dapo", "epsilon_high": "0.28", "mask_truncated_completions": "true"}, "clip_ratio/high_mean"),
    ({"loss_type": "bnpo"}, "clip_ratio/region_mean"),
    ({"loss_type": "cispo", "epsilon_high": "5.0"}, "cispo_clip_ratio"),
    ({"loss_type": "sapo"}, None),
]


@pytest.mark.parametrize("overrides, metric", LOSS_ROWS, ids=[r[0]["loss_type"] for r in LOSS_ROWS])
def test_each_loss_type_reaches_trl_and_trains(tmp_path, tiny_model_dir, monkeypatch, overrides, metric):
    import arithmo.grpo

    _script(monkeypatch)
    seen = {}
    original = arithmo.grpo.build_trainer

    def spy(*args, **kwargs):
        trainer, interrupt = original(*args, **kwargs)
        seen.update(loss_type=trainer.loss_type, level=trainer.importance_sampling_level,
                    high=trainer.epsilon_high, mask=trainer.mask_truncated_completions, beta=trainer.beta)
        return trainer, interrupt

    monkeypatch.setattr(arithmo.grpo, "build_trainer", spy)
    grpo(_cfg(tmp_path, tiny_model_dir, **overrides))
    assert seen["loss_type"] == overrides["loss_type"]
    assert seen["level"] == overrides.get("importance_sampling_level", "token")
    assert seen["high"] == float(overrides.get("epsilon_high", 0.2))
    assert seen["mask"] is (overrides.get("mask_truncated_completions") == "true")
    row = next(r for r in read_train_log(tmp_path / "runs" / "g" / "train_log.jsonl") if "reward" in r)
    assert math.isfinite(row["loss"]) and 0 <= row["reward"] <= 1
    if metric:
        assert metric in row
    manifest = json.loads((tmp_path / "runs" / "g" / "manifest.json").read_text())
    assert manifest["loss"]["loss_type"] == overrides["loss_type"]


def test_dynamic_sampling_drops_and_refills(tmp_path, tiny_model_dir, monkeypatch):
    # q0..q3 always solved (all-equal groups); q4..q7 scored by hash (mixed with 4 samples, most likely)
    solved = {str(i + 3) for i in range(4)}
    _script(monkeypatch, solved)
    summary = grpo(_cfg(tmp_path, tiny_model_dir, n=8, dynamic_sampling="true", dynamic_sampling_rounds=4,
                        max_steps=2, micro_batch_size=8, grad_accum=2))
    rows = [r for r in read_train_log(tmp_path / "runs" / "g" / "train_log.jsonl") if "reward" in r]
    assert [r["step"] for r in rows] == [1, 2]
    groups = summary["groups"]
    assert groups["groups"] == 2 * 4  # 4 questions per step
    assert groups["groups_all_equal"] == sum(r["groups_all_equal"] for r in rows)
    assert groups["groups_all_equal"] >= 1  # 4 of 8 questions are always solved
    for r in rows:
        assert r["groups_all_equal_share"] == r["groups_all_equal"] / 4
        assert r["groups_refilled"] + r["groups_short"] == r["groups_all_equal"]
    assert groups["groups_refilled"] + groups["groups_short"] == groups["groups_all_equal"]
    assert groups.get("refill_groups_generated", 0) >= groups["groups_refilled"]


def test_without_dynamic_sampling_the_share_is_logged_and_nothing_refilled(tmp_path, tiny_model_dir, monkeypatch):
    _script(monkeypatch, solved={str(i + 3) for i in range(6)})  # every question solved: every group all-equal
    summary = grpo(_cfg(tmp_path, tiny_model_dir))
    row = next(r for r in read_train_log(tmp_path / "runs" / "g" / "train_log.jsonl") if "reward" in r)
    assert row["groups_all_equal"] == 2 and row["groups_all_equal_share"] == 1.0
    assert "groups_refilled" not in row and summary["groups"] == {"groups": 2, "groups_all_equal": 2}
    assert summary["rollout"] == {"backend": "hf"}


def test_overlong_shaping_in_the_recipe(tmp_path, tiny_model_dir, monkeypatch):
    _script(monkeypatch)
    grpo(_cfg(tmp_path, tiny_model_dir, overlong_buffer=4))
    row = next(r for r in read_train_log(tmp_path / "runs" / "g" / "train_log.jsonl") if "reward" in r)
    # a random tiny model runs to the limit: every completion is punished in full
    assert row["overlong_rate"] > 0 and row["rewards/overlong/mean"] < 0


# ----------------------------------------------------------------------------------------------
# curriculum: pass rates from RFT samples and evaluation predictions


def _rft_file(path, rows):
    lines = []
    for item_id, style, reasons in rows:
        lines.append({"id": item_id, "style": style, "round": 0,
                      "samples": [{"completion": "...", "reason": r, "answer": None} for r in reasons]})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


ITEMS = [{"id": f"q{i}", "question": f"question {i}", "answer": str(i)} for i in range(6)]


def test_rft_pass_rates_and_the_band(tmp_path):
    path = _rft_file(tmp_path / "samples.jsonl", [
        ("q0", "cot", ["correct"] * 4),                       # rate 1: solved, no advantage left
        ("q1", "cot", ["correct", "wrong", "wrong", "no_answer"]),  # 0.25
        ("q2", "cot", ["wrong"] * 4),                         # 0: never solved
        ("q3", "cot", ["correct", "wrong"]),
        ("q3", "cot", ["correct", "correct"]),                # a second round adds up: 3/4
        ("q4", "pot", ["correct"] * 4),                       # another style: not counted for cot
        ("q5", "cot", ["unreadable_gold"] * 2 + ["correct", "wrong"]),  # ungraded samples left out: 1/2
        ("gone", "cot", ["correct"]),                         # a question not trained: counted as extra
    ])
    rates = read_pass_rates(tmp_path, ["cot"])  # the folder: samples.jsonl found inside
    assert rates.kind == "rft" and rates.other_styles == 1 and rates.ungraded == 2
    assert [rates.rate(f"q{i}") for i in range(6)] == [1.0, 0.25, 0.0, 0.75, None, 0.5]
    kept, record = select_by_pass_rate(ITEMS, rates, 0.1, 0.9)
    assert [item["id"] for item in kept] == ["q1", "q3", "q5"]
    assert record["counts"] == {"below_min": 1, "above_max": 1, "unmatched": 1, "gold_mismatch": 0}
    assert record["kept"] == 3 and record["file_ids_not_trained"] == 1 and record["rates"]["q4"] is None
    assert sum(record["rate_histogram_tenths"]) == 5  # the matched ones
    kept, record = select_by_pass_rate(ITEMS, rates, 0.1, 0.9, unmatched="keep")
    assert [item["id"] for item in kept] == ["q1", "q3", "q4", "q5"]  # the unknown rate kept, still counted
    assert record["counts"]["unmatched"] == 1
    kept, _ = select_by_pass_rate(ITEMS, rates, 0.0, 1.0)  # the full band keeps every matched question
    assert [item["id"] for item in kept] == ["q0", "q1", "q2", "q3", "q5"]


def test_eval_pass_rates_match_id_and_gold(tmp_path):
    lines = [{"id": "q0", "style": "cot", "correct": True, "gold": "0", "sample": 0},
             {"id": "q0", "style": "cot", "correct": False, "gold": "0", "sample": 1},   # pass@k lines: 1/2
             {"id": "q1", "style": "cot", "correct": True, "gold": " 1 "},                # whitespace: same gold
             {"id": "q2", "style": "cot", "correct": True, "gold": "22"},                 # same id, another gold
             {"id": "q3", "style": "cot", "correct": False, "gold": "3"}]
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    rates = read_pass_rates(tmp_path / "predictions.jsonl", ["cot"])
    kept, record = select_by_pass_rate(ITEMS, rates, 0.0, 0.6)
    assert [item["id"] for item in kept] == ["q0", "q3"]  # must NOT keep q2 (another question) nor q1 (rate 1)
    assert record["counts"] == {"below_min": 0, "above_max": 1, "unmatched": 2, "gold_mismatch": 1}
    assert record["matched_by"] == "id and gold" and record["first_ids"]["gold_mismatch"] == ["q2"]


BAD_FILES = [  # (file text, error words): each names the file and line
    ('{"id": "q0", "style": "cot", "samples": [{"reason": "correct"}]}\nnot json\n', "samples.jsonl:2: not a JSON"),
    ('{"id": "q0", "style": "cot"}\n', "samples.jsonl:1: expected an RFT round"),
    ('{"id": "q0", "style": "cot", "samples": "x"}\n', "samples.jsonl:1: samples: expected a list"),
    ('{"id": "q0", "style": "cot", "samples": []}\n{"id": "q1", "style": "cot", "correct": true}\n',
     "samples.jsonl:2: expected a line like the file's first (rft)"),   # two formats mixed
    ('{"id": "q0", "style": "pot", "samples": [{"reason": "correct"}]}\n', "no graded sample of style cot"),
]


@pytest.mark.parametrize("text, error", BAD_FILES)
def test_bad_curriculum_files_name_file_and_line(tmp_path, text, error):
    (tmp_path / "samples.jsonl").write_text(text)
    with pytest.raises(DataError, match=error.replace("(", r"\(").replace(")", r"\)")):
        read_pass_rates(tmp_path / "samples.jsonl", ["cot"])


def test_eval_correct_must_be_a_bool(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"id": "q0", "style": "cot", "correct": "yes"}\n')
    with pytest.raises(DataError, match="p.jsonl:1: correct: expected true or false"):
        read_pass_rates(tmp_path / "p.jsonl", ["cot"])


def test_a_folder_without_either_file_is_named(tmp_path):
    with pytest.raises(DataError, match="neither samples.jsonl"):
        read_pass_rates(tmp_path, ["cot"])
    with pytest.raises(DataError, match="no such file"):
        read_pass_rates(tmp_path / "missing", ["cot"])


def test_curriculum_in_the_recipe_manifest(tmp_path, tiny_model_dir, monkeypatch):
    _script(monkeypatch)
    rft = _rft_file(tmp_path / "samples.jsonl", [(f"q{i}", "cot", ["correct"] * i + ["wrong"] * (5 - i))
                                                 for i in range(6)])  # rates 0, .2, .4, .6, .8, 1
    grpo(_cfg(tmp_path, tiny_model_dir, curriculum=str(rft), min_pass_rate=0.2, max_pass_rate=0.8))
    manifest = json.loads((tmp_path / "runs" / "g" / "manifest.json").read_text())
    assert manifest["questions"]["used"] == 4 and manifest["curriculum"]["kept"] == 4
    assert manifest["curriculum"]["counts"]["below_min"] == 1 and manifest["curriculum"]["counts"]["above_max"] == 1
    assert manifest["curriculum"]["rates"]["q3"] == pytest.approx(0.6)
    from arithmo.grpo import GRPOError

    with pytest.raises(GRPOError, match="no question has 0.45 <= pass rate <= 0.5"):
        grpo(_cfg(tmp_path, tiny_model_dir, curriculum=str(rft), min_pass_rate=0.45, max_pass_rate=0.5,
                  overwrite="true"))


# ----------------------------------------------------------------------------------------------
# resume: the new keys are honoured (memory only) or refused on change; (key, new value, refused?)

RESUME_ROWS = [
    ("vllm_sleep", False, False),                    # memory and time only: may change
    ("vllm_gpu_memory_utilization", 0.5, False),     # another card
    ("loss_type", "grpo", True),                     # must NOT change silently: another objective
    ("epsilon_high", 0.28, True),
    ("importance_sampling_level", "sequence", True),
    ("rollout", "vllm", True),                       # another sampler: the saved steps were sampled by hf
    ("dynamic_sampling", True, True),
    ("overlong_buffer", 8, True),
    # the curriculum's keys choose the questions: compared by what they choose (manifest questions_sha256,
    # tests/test_first_hour.py), so a settings diff does not refuse them on its own
    ("curriculum", "runs/rft", False),
    ("min_pass_rate", 0.2, False),
]


@pytest.mark.parametrize("key, value, refused", RESUME_ROWS)
def test_resume_refuses_or_honours_the_new_keys(key, value, refused):
    from arithmo.config import to_dict
    from arithmo.resume import GRPO_MAY_CHANGE, resume_differences

    saved = to_dict(load_config(GRPOTrainConfig, None, []))
    asked = dict(saved, **{key: value})
    changed = resume_differences(saved, asked, GRPO_MAY_CHANGE)
    assert bool(changed) is refused and all(c.startswith(key + ":") for c in changed)


@pytest.mark.skipif(__import__("importlib").util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_rollout_vllm_without_vllm_is_one_error_line():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "arithmo.grpo", "--preset", "smollm2_135m_cpu", "rollout=vllm",
                           "output_dir=/nonexistent/never"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: rollout=vllm: vLLM is not installed here")



# issue 28 review: values that passed the checks. (override, the key the one error line must name); pitfall of the
# first rows: NaN compares false with every bound, so beta=nan trained an all-NaN adapter and reported "done"
REVIEW_REFUSED = [
    ("beta=nan", "beta: expected a finite number"),
    ("beta=inf", "beta: expected a finite number"),
    ("epsilon_high=nan", "epsilon_high: expected a finite number"),
    ("epsilon_high=inf", "epsilon_high: expected a finite number"),
    ("beta=-0.1", "beta: expected >= 0"),                     # one line naming the key, not a list of five
    ("temperature=0", "temperature: expected > 0"),
    ("loss_type=sapo epsilon_high=0.28", "epsilon_high: loss_type=sapo"),   # a knob SAPO does not use
    ("dynamic_sampling=true dynamic_sampling_rounds=0", "dynamic_sampling_rounds: expected >= 1"),
]


@pytest.mark.parametrize("overrides, message", REVIEW_REFUSED)
def test_review_values_are_one_error_line(overrides, message):
    from arithmo.config import ConfigError, load_config
    from arithmo.grpo import GRPOTrainConfig

    with pytest.raises(ConfigError) as err:
        load_config(GRPOTrainConfig, None, overrides.split())
    assert str(err.value).startswith(message), str(err.value)


def test_a_bad_curriculum_with_overwrite_keeps_the_old_run(tmp_path, capsys):
    # pitfall (issue 28 review): overwrite=true deleted the old run, then the curriculum path failed
    from arithmo.grpo import main

    run = tmp_path / "runs" / "g"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "q0", "question": "What is 1 + 1?", "answer": "2"}\n')
    code = main([f"output_dir={tmp_path / 'runs'}", "name=g", "overwrite=true", "benchmark=file", f"path={questions}",
                 f"curriculum={tmp_path / 'nope.jsonl'}", "model.load_in_4bit=false"])
    assert code == 2 and "nope.jsonl" in capsys.readouterr().err
    assert (run / "adapter" / "adapter_model.safetensors").read_bytes() == b"weights"
