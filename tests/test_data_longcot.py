"""Long chain-of-thought sources (issue 27): trace splitting, TIR markup, the four adapters on fixtures in their
real schemas, every row's (and generation's) fate in the manifest, the per_problem knob, the long/short mix."""

import json

import numpy as np
import pytest
from hub_schemas import HUB_SCHEMAS

from _shared import REPO
from arithmo.config import ConfigError, load_config
from arithmo.data import build_from_recipe
from arithmo.data.adapters import ADAPTERS, COLUMNS
from arithmo.data.reasoning import MAX_TRACE_CHARS, split_trace, tir_markup
from arithmo.data.recipe import DataConfig
from arithmo.io import DataError, read_file_rows

FIXTURES = REPO / "data_recipes" / "fixtures"


# ---------------------------------------------------------------------------------------------- split_trace

@pytest.mark.parametrize("text, expected", [
    ("<think>\nR\n</think>\n\nA", ("R", "A")),                 # R1's layout
    ("R\n</think>\nA", ("R", "A")),                            # the prompt opened the block: only the close is written
    ("<think>\nline 1\n\nline 2\n</think>\n\n**A**", ("line 1\n\nline 2", "**A**")),  # blank lines inside kept
    # must NOT yield an example:
    ("<think>\nR cut off while thinking", "trace_unclosed"),   # no answer: generation hit its budget
    ("plain CoT, no think block", "trace_no_think"),           # a short-CoT row is not a trace
    ("<think>\nR\n</think>\n\n", "empty_answer"),               # nothing after the block to learn
    ("<think>\n\n</think>\n\nA", "empty_reasoning"),            # an empty block is not a trace
    ("<think>\nR\n</think>\nA</think>B", "trace_nested_think"),  # where the answer starts is ambiguous
    ("<think>a</think> then <think>b</think> C", "trace_nested_think"),
    ("Intro <think>\nR\n</think>\nA", "trace_nested_think"),    # text before the block: not R1's layout
])
def test_split_trace(text, expected):
    assert split_trace(text) == expected


def test_split_trace_refuses_oversized_text_without_scanning_it():
    assert split_trace("x" * (MAX_TRACE_CHARS + 1)) == "trace_too_long"


# ---------------------------------------------------------------------------------------------- tir_markup

CALL = "<tool_call>\n```python\nprint(1 + 1)\n```\n</tool_call>\n```output\n2\n```\n"
# The notes NeMo-Skills' harness appends after an output block (nemo_skills/code_execution/utils.py)
SYSTEM_LEFT = ("```system\nRemaining code executions: 3. You will not be able to call code when you run out of "
               "executions, so use it wisely. Note that you can still continue solving the problem without code after "
               "that.\n```\n")
SYSTEM_OUT = ("```system\nYou have run out of code executions! You can no longer write or execute code. Now you should "
              "continue solving the problem by relying on your mathematical reasoning and analytical skills.\n```\n")


@pytest.mark.parametrize("text, expected", [
    # OpenMathReasoning's fenced call -> arithmo's block, the output block untouched right after the closing fence
    ("Try.\n" + CALL + "So 2.", ("Try.\n```python\nprint(1 + 1)\n```\n```output\n2\n```\nSo 2.", 1)),
    ("<tool_call>\nx = 3\nprint(x)\n</tool_call>\n", ("```python\nx = 3\nprint(x)\n```\n", 1)),  # unfenced call
    (CALL + CALL, ("```python\nprint(1 + 1)\n```\n```output\n2\n```\n" * 2, 2)),
    ("no calls here", ("no calls here", 0)),
    # the harness's ```system note after an output block is not the model's text: removed (both wordings)
    (CALL + SYSTEM_LEFT + "So 2.", ("```python\nprint(1 + 1)\n```\n```output\n2\n```\nSo 2.", 1)),
    (CALL + SYSTEM_OUT + "So 2.", ("```python\nprint(1 + 1)\n```\n```output\n2\n```\nSo 2.", 1)),
    # must NOT remove: a mention of the fence inside a line of text
    ("Text ```system in a line", ("Text ```system in a line", 0)),
    # must NOT pass:
    (CALL + "```system\nRemaining code executions: 3.", "tir_unclosed_system_block"),  # cut inside the note
    ("<tool_call>\nprint(1)\n", "tir_unclosed_tool_call"),     # generation cut inside a call
    ("x" * (MAX_TRACE_CHARS + 1), "trace_too_long"),
])
def test_tir_markup(text, expected):
    assert tir_markup(text) == expected


def test_mapped_output_blocks_are_the_masked_spans():
    from arithmo.prompts import tir_output_spans

    text, _ = tir_markup("Try.\n" + CALL + "So 2.")
    spans = tir_output_spans(text)
    assert [text[a:b] for a, b in spans] == ["```output\n2\n```\n"]  # only the interpreter's text is masked
    assert "```python\nprint(1 + 1)\n```\n" in text[:spans[0][0]]      # the model's code and CODE_END are not


# ---------------------------------------------------------------------------------------------- adapters

def _r1(generations, mv, llama=None, complete=None, finish=None, problem="Find x."):
    n = len(generations)
    return {"problem": problem, "answer": "1", "generations": generations, "correctness_math_verify": mv,
            "correctness_llama": llama, "is_reasoning_complete": complete or [True] * n,
            "finish_reasons": finish or ["stop"] * n}


GOOD = "<think>\nR\n</think>\n\nA \\boxed{1}"


@pytest.mark.parametrize("row, per_problem, fates", [
    (_r1([GOOD, GOOD], [True, True]), "one", ["kept", "generation_not_chosen"]),
    (_r1([GOOD, GOOD], [True, True]), "all", ["kept", "kept"]),
    (_r1([GOOD], [False], llama=[True]), "one", ["kept"]),                 # the Llama judge's verdict counts
    # must NOT be kept:
    (_r1([GOOD], [False], llama=[False]), "one", ["generation_incorrect"]),
    (_r1([GOOD], [False]), "one", ["generation_incorrect"]),               # null judge, math-verify says no
    (_r1([GOOD], [True], complete=[False]), "one", ["trace_incomplete"]),
    (_r1([GOOD], [True], finish=["length"]), "one", ["trace_incomplete"]),  # cut by the token budget
    (_r1(["<think>\nR"], [True]), "one", ["trace_unclosed"]),
    (_r1([GOOD], [True], problem=""), "one", ["empty_question"]),
    (_r1([], []), "one", ["no_generations"]),
    (_r1([None, GOOD], [True, True]), "all", ["empty_generation", "kept"]),  # a null generation: its own reason
    (_r1([GOOD], [np.True_], complete=[np.True_]), "one", ["kept"]),  # numpy's bool_ (pandas/parquet) is a bool
])
def test_openr1_keeps_only_complete_correct_generations(row, per_problem, fates):
    got = ADAPTERS["openr1_math"](row, "row 1", per_problem=per_problem)
    assert ["kept" if isinstance(o, dict) else o for o in got] == fates
    for outcome in got:
        if isinstance(outcome, dict):
            assert outcome["reasoning"] == "R" and outcome["solution"] == "A \\boxed{1}"


@pytest.mark.parametrize("row, message", [
    (_r1([GOOD, GOOD], [True]), r"row 7: 'correctness_math_verify' should be a list of 2"),
    # finish_reasons of another length: which reason belongs to which generation is unknown, never ignored
    (_r1([GOOD, GOOD], [True, True], finish=["length"]), r"row 7: 'finish_reasons' should be a list of 2"),
    (_r1([GOOD], [True], finish="stop"), r"row 7: 'finish_reasons' should be a list of 1"),
    # a flag that is not a boolean is not read as false
    (_r1([GOOD], ["true"]), r"row 7: 'correctness_math_verify' holds 'true'"),
])
def test_openr1_list_columns_of_the_wrong_shape_name_the_row(row, message):
    with pytest.raises(DataError, match=message):
        ADAPTERS["openr1_math"](row, "row 7")


def _omr(solution, mode):
    return {"problem": "P?", "generated_solution": solution, "inference_mode": mode, "expected_answer": "2"}


@pytest.mark.parametrize("row, fate, style", [
    (_omr(GOOD, "cot"), "kept", "cot"),
    (_omr("<think>\n" + CALL + "</think>\n\nIt is 2.", "tir"), "kept", "tir"),
    # must NOT be kept:
    (_omr(GOOD, "tir"), "tir_no_code", None),                  # a TIR row that never calls the interpreter
    (_omr("Judgment: 2", "genselect"), "genselect_not_sft", None),
    (_omr("<think>\nR", "cot"), "trace_unclosed", None),
    (_omr("<think>\n<tool_call>\nprint(1)\n", "tir"), "tir_unclosed_tool_call", None),
])
def test_openmathreasoning_splits(row, fate, style):
    got = ADAPTERS["openmathreasoning"](row, "row 1")
    assert (got if isinstance(got, str) else "kept") == fate
    if style:
        assert got["style"] == style and got["answer"] == "2" and "<think>" not in got["reasoning"]


def test_openmathreasoning_tir_rows_lose_the_harness_notes_and_they_are_never_learned(tokenizer):
    from arithmo.prompts import render_sft, tir_output_spans, tokenize_sft

    row = _omr("<think>\nTry.\n" + CALL + SYSTEM_LEFT + "Again.\n" + CALL + SYSTEM_OUT + "So 2.\n</think>\n\nIt is 2.",
               "tir")
    got = ADAPTERS["openmathreasoning"](row, "row 1")
    assert "```system" not in got["reasoning"] and "code executions" not in got["reasoning"]
    record = {"id": "o/0", "source": "o", "style": "tir", "prompt": "P?", "reasoning": got["reasoning"],
              "completion": got["solution"]}
    rendered = render_sft(record, tokenizer, "auto")
    ids, mask = tokenize_sft(rendered, tokenizer, tir_output_spans(rendered["completion"]))
    learned = tokenizer.decode([i for i, m in zip(ids, mask) if m])
    assert "So 2." in learned and "It is 2." in learned and "code executions" not in learned
    assert "```output" not in learned  # the interpreter's blocks stay masked


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_openmathreasoning_unknown_mode_names_the_row():
    with pytest.raises(DataError, match="row 3: inference_mode 'pot'"):
        ADAPTERS["openmathreasoning"](_omr(GOOD, "pot"), "row 3")


@pytest.mark.parametrize("adapter, row, fate", [
    ("s1k", {"question": "Q", "deepseek_thinking_trajectory": "T", "deepseek_attempt": "A"}, ("T", "A")),
    ("s1k", {"question": "Q", "deepseek_thinking_trajectory": "", "deepseek_attempt": "A"}, "empty_reasoning"),
    ("s1k", {"question": "Q", "deepseek_thinking_trajectory": "T", "deepseek_attempt": " "}, "empty_answer"),
    ("s1k", {"question": "", "deepseek_thinking_trajectory": "T", "deepseek_attempt": "A"}, "empty_question"),
    # must NOT be kept: think tags inside the trace or the attempt would end the block early (training refuses them)
    ("s1k", {"question": "Q", "deepseek_thinking_trajectory": "T </think> U", "deepseek_attempt": "A"},
     "trace_nested_think"),
    ("s1k", {"question": "Q", "deepseek_thinking_trajectory": "R1 writes <think> here", "deepseek_attempt": "A"},
     "trace_nested_think"),
    ("s1k", {"question": "Q", "deepseek_thinking_trajectory": "T", "deepseek_attempt": "A </think> 5"},
     "trace_nested_think"),
    ("limo", {"question": "Q", "solution": "Chain.\n\n**Final Answer**\n\\boxed{4}", "answer": "4"},
     ("Chain.", "**Final Answer**\n\\boxed{4}")),
    ("limo", {"question": "Q", "solution": "Chain without a marker.", "answer": "4"},
     ("Chain without a marker.", "\\boxed{4}")),               # the stated answer, boxed
    ("limo", {"question": "Q", "solution": "<think>\nC\n</think>\n\nD", "answer": "4"}, ("C", "D")),
    ("limo", {"question": "Q", "solution": "", "answer": "4"}, "empty_reasoning"),
    ("limo", {"question": "Q", "solution": "Chain, no marker, no answer.", "answer": ""}, "empty_answer"),
    ("limo", {"question": "Q", "solution": "Use the <think> idea.\n**Final Answer**\n\\boxed{3}", "answer": "3"},
     "trace_nested_think"),                                    # a lone <think> outside R1's layout
    ("limo", {"question": "Q", "solution": "C\n**Final Answer**\n<think> \\boxed{3}", "answer": "3"},
     "trace_nested_think"),
])
def test_curated_sets(adapter, row, fate):
    got = ADAPTERS[adapter](row, "row 1")
    assert got == fate if isinstance(fate, str) else (got["reasoning"], got["solution"]) == fate


@pytest.mark.parametrize("adapter, row, column", [
    ("openr1_math", {"problem": "P", "generations": []}, "correctness_math_verify"),
    ("openmathreasoning", {"problem": "P", "generated_solution": "S"}, "inference_mode"),
    ("s1k", {"question": "Q", "deepseek_attempt": "A"}, "deepseek_thinking_trajectory"),
    ("limo", {"problem": "P", "solution": "S"}, "question"),   # another dataset's column name
])
def test_a_file_in_another_schema_names_the_missing_column(adapter, row, column):
    with pytest.raises(DataError, match=f"row 2: missing field.*'{column}'"):
        ADAPTERS[adapter](row, "row 2")


@pytest.mark.parametrize("hub, adapter, fixture", [
    ("open-r1/OpenR1-Math-220k", "openr1_math", "openr1_math.jsonl"),
    ("nvidia/OpenMathReasoning", "openmathreasoning", "openmathreasoning.jsonl"),
    ("simplescaling/s1K-1.1", "s1k", "s1k.jsonl"),
    ("GAIR/LIMO", "limo", "limo.jsonl"),
])
def test_adapter_columns_are_on_the_card_and_fixtures_use_exactly_them(hub, adapter, fixture):
    assert set(COLUMNS[adapter]) <= set(HUB_SCHEMAS[hub]["columns"])
    for _, row in read_file_rows(FIXTURES / fixture):
        assert set(row) == set(HUB_SCHEMAS[hub]["columns"])


# ---------------------------------------------------------------------------------------------- builds

def test_fixtures_build_with_every_row_accounted_for(tmp_path):
    manifest = build_from_recipe(FIXTURES / "longcot.yaml", tmp_path, log=lambda line: None)
    sources = manifest["sources"]
    assert {name: (s["rows_in"], s["rows_out"], s["dropped"]) for name, s in sources.items()} == {
        # rows_in counts OpenR1-Math's generations: 4 problems hold 8
        "openr1_math": (8, 2, {"empty_question": 1, "generation_incorrect": 1, "generation_not_chosen": 1,
                               "trace_incomplete": 2, "trace_unclosed": 1}),
        "openmathreasoning": (7, 4, {"genselect_not_sft": 1, "tir_no_code": 1, "trace_unclosed": 1}),
        "s1k": (3, 2, {"empty_answer": 1}),
        "limo": (3, 2, {"empty_reasoning": 1}),
    }
    assert sources["openmathreasoning"]["out_by_style"] == {"cot": 2, "tir": 2}
    assert manifest["totals"]["balanced"] and manifest["transforms"]["actions"]["tir_verified"] == 2
    assert {s: v["with_reasoning"] for s, v in manifest["reasoning"].items()} == {
        "openr1_math": 2, "openmathreasoning": 4, "s1k": 2, "limo": 2}
    rows = [json.loads(line) for line in open(tmp_path / "train.jsonl")]
    assert all(r["reasoning"] and "<think>" not in r["reasoning"] + r["completion"] for r in rows)
    tirs = [r for r in rows if r["style"] == "tir"]
    assert all("```python\n" in r["reasoning"] and "<tool_call>" not in r["reasoning"] for r in tirs)
    # the real layout's harness notes are gone; both of its calls are kept
    assert not any("```system" in r["reasoning"] or "code executions" in r["reasoning"] for r in tirs)
    assert max(r["reasoning"].count("```output\n") for r in tirs) == 2
    # the recipe names a tokenizer (the embedded SmolLM2 alias): token counts with the trace distribution
    lengths = manifest["token_lengths"]["by_source"]
    assert manifest["token_lengths"]["tokenizer"] == "smollm2-135m-instruct"
    for source in ("openr1_math", "openmathreasoning", "s1k", "limo"):
        entry = lengths[source]
        assert entry["rows_with_reasoning"] == entry["rows"] and 0 < entry["reasoning"]["p99"] < entry["total"]["max"]
        assert {"8192", "16384", "32768"} <= set(entry["over"])


def test_openmathreasoning_per_problem_one_keeps_each_problems_first_solution(tmp_path):
    manifest = build_from_recipe(FIXTURES / "longcot.yaml", tmp_path, ["sources.1.per_problem=one",
                                                                       "tokenizer=null"], log=lambda line: None)
    omr = manifest["sources"]["openmathreasoning"]
    assert (omr["rows_in"], omr["rows_out"], omr["dropped"].get("solution_not_chosen")) == (7, 3, 1)
    assert omr["balanced"]


def test_per_problem_all_keeps_every_verified_trace_and_the_mix_states_its_sources(tmp_path):
    manifest = build_from_recipe(FIXTURES / "longcot_mix.yaml", tmp_path, log=lambda line: None)
    assert manifest["sources"]["openr1_math"]["rows_out"] == 3  # both traces of the first problem, one of the second
    assert manifest["sources"]["openmath2"]["rows_out"] >= 1 and "openmath2" not in manifest["reasoning"]
    rows = [json.loads(line) for line in open(tmp_path / "train.jsonl")]
    assert {bool(r.get("reasoning")) for r in rows} == {True, False}  # long and short rows in one mix


def _trace(reasoning):
    return f"<think>\n{reasoning}\n</think>\n\nSo $x = 2$ and the answer is \\boxed{{2}}."


@pytest.mark.parametrize("near", [False, True])
def test_per_problem_all_keeps_distinct_traces_of_one_problem_through_dedup(tmp_path, near):
    # Three traces of one problem ending in the same answer: two distinct, one a copy of the first.
    first = _trace("Subtract 3 from both sides: 2x = 4, so x = 2. Check: 2*2 + 3 = 7. Good.")
    other = _trace("Try x = 1: 5, too small. Try x = 2: 7, right. Nothing else works since 2x + 3 grows.")
    row = _r1([first, other, first], [True, True, True], problem="Solve 2x + 3 = 7.")
    (tmp_path / "r1.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "recipe.yaml").write_text(
        "name: r\nsources:\n  - {name: r1, adapter: openr1_math, path: r1.jsonl, per_problem: all}\n"
        f"decontaminate: {{enabled: false}}\ndedup: {{exact: true, near: {str(near).lower()}}}\n"
        "transforms: {lowercase_share: 0.0}\nval_size: 0\n")
    manifest = build_from_recipe(tmp_path / "recipe.yaml", tmp_path / "out", log=lambda line: None)
    source = manifest["sources"]["r1"]
    # must NOT drop the second trace as a duplicate of the first (same question, same answer line)
    assert (source["rows_in"], source["rows_out"], source["dropped"]) == (3, 2, {"duplicate": 1})
    rows = [json.loads(line) for line in open(tmp_path / "out" / "train.jsonl")]
    assert len({r["reasoning"] for r in rows}) == 2 and source["balanced"]


@pytest.mark.parametrize("preset", ["qwen25math7b_longcot8k_qlora", "qwen25math7b_longcot_qlora",
                                    "qwen25math7b_longcot32k_qlora", "smollm2_135m_longcot_cpu"])
def test_longcot_presets_train_only_styles_their_data_holds(preset):
    import yaml

    cfg = yaml.safe_load((REPO / "arithmo" / "configs" / "train" / f"{preset}.yaml").read_text())
    recipe = yaml.safe_load((REPO / cfg["data"]).read_text())
    # the styles each source can give (TIR: OpenMathReasoning's tir split, NuminaMath-TIR)
    held = set()
    for source in recipe["sources"]:
        held.add("cot")
        if source["adapter"] == "numinamath_tir" or (source["adapter"] == "openmathreasoning"
                                                     and "tir" in source.get("splits", ["tir"])):
            held.add("tir")
    assert set(cfg["styles"]) <= held, f"{preset} trains {cfg['styles']} on data holding only {sorted(held)}"
    assert recipe.get("tokenizer"), f"{cfg['data']} names no tokenizer: no token_lengths for picking a preset"


def test_per_problem_is_refused_for_adapters_with_one_solution_per_row():
    with pytest.raises(ConfigError, match=r"sources\[s\]\.per_problem"):
        load_config(DataConfig, None, ["sources=[{name: s, adapter: limo, path: x.jsonl, per_problem: all}]"])


def test_token_lengths_give_the_trace_length_distribution(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from arithmo.data.token_lengths import LIMITS, token_lengths

    build_from_recipe(FIXTURES / "longcot_mix.yaml", tmp_path, log=lambda line: None)
    records = [json.loads(line) for line in open(tmp_path / "train.jsonl")]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    stats = token_lengths(records, tokenizer)["by_source"]
    long, short = stats["openr1_math"], stats["openmath2"]
    assert long["rows_with_reasoning"] == long["rows"] == 3
    assert 0 < long["reasoning"]["p50"] <= long["reasoning"]["max"] < long["total"]["max"]  # the trace is a part
    assert "reasoning" not in short and "rows_with_reasoning" not in short  # short CoT has no trace
    assert {"8192", "16384", "32768"} <= set(long["over"]) and len(long["over"]) == len(LIMITS)


@pytest.mark.parametrize("preset, overrides, fits", [
    ("qwen25math7b_longcot8k_qlora", [], True),
    ("qwen25math7b_longcot_qlora", [], True),          # the 16K preset: the target on a 24 GB card
    ("qwen25math7b_longcot32k_qlora", [], True),
    # must NOT fit: what the presets avoid
    ("qwen25math7b_longcot32k_qlora", ["micro_batch_size=4"], False),
    ("qwen25math7b_longcot_qlora", ["model.gradient_checkpointing=false"], False),  # every layer's activations kept
])
def test_longcot_presets_fit_24gb_by_the_planner(preset, overrides, fits, capsys):
    from arithmo import plan

    assert plan.main(["--preset", preset, *overrides, "--gpu-gb", "24", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["fits"] is fits, result["peak_reserved_gib"]
    if fits:
        assert result["peak_reserved_gib"] < 24
