"""The public-mix adapters and the generic formats, on fixtures in each real schema (data_recipes/fixtures/)."""

import json

import pytest

from arithmo.config import ConfigError, load_config
from arithmo.data.adapters import ADAPTERS, COLUMNS
from arithmo.data.build import build_from_recipe
from arithmo.data.recipe import DataConfig
from arithmo.io import DataError, read_file_rows

from _shared import REPO, shared_file
from hub_schemas import HUB_SCHEMAS

FIXTURES = REPO / "data_recipes" / "fixtures"


def _fixture(name):
    return list(read_file_rows(FIXTURES / name))


# (adapter, fixture file, row index, expected question start, expected style or drop reason, expected meta)
ROWS = [
    ("dart_math", "dart_math.jsonl", 0, "A baker makes 24 rolls", "cot", {}),
    ("dart_math", "dart_math.jsonl", 3, None, "empty_solution", None),            # an empty response
    ("openmath2", "openmath2.jsonl", 1, "Find the remainder", "cot", {"problem_source": "augmented_math"}),
    ("numinamath", "numinamath.jsonl", 1, "Given the function", "cot", {"source": "cn_k12"}),
    ("numinamath", "numinamath.jsonl", 2, None, "empty_question", None),          # whitespace-only problem
    ("gsm8k_train", "gsm8k_train.jsonl", 0, "A farmer has 15 cows", "cot", {}),
    ("math_train", "math_train.jsonl", 1, "How many positive divisors", "cot",
     {"level": "Level 2", "type": "Number Theory"}),
    # OpenAI messages: the system turn is kept aside, not in the question
    ("messages", "messages_openai.jsonl", 0, "What is 7 times 8?", "cot", {"system": "You are a careful math tutor."}),
    ("messages", "messages_openai.jsonl", 1, "What is 9 plus 10?", "cot", {}),    # content parts joined
    ("messages", "messages_openai.jsonl", 2, None, "multi_turn", None),           # two exchanges: not one record
    ("messages", "messages_openai.jsonl", 3, None, "multi_turn", None),           # a tool turn
    ("messages", "messages_openai.jsonl", 4, None, "non_text_content", None),     # an image part
    # ShareGPT spelling: conversations / from / value, human / gpt
    ("messages", "messages_sharegpt.jsonl", 0, "What is 100 divided by 4?", "cot", {"system": "Solve step by step."}),
    ("messages", "messages_sharegpt.jsonl", 2, None, "empty_solution", None),     # the question has no answer
    ("alpaca", "alpaca.jsonl", 0, "Solve the problem.\n\nA car travels", "cot", {}),  # input after a blank line
    ("alpaca", "alpaca.jsonl", 3, None, "empty_question", None),                  # context without an instruction
    ("prompt_completion", "prompt_completion.jsonl", 0, "What is 11 times 11?", "cot", {}),
    ("prompt_completion", "prompt_completion.jsonl", 1, "What is 2 cubed?", "cot", {"system": "Be brief."}),
    ("prompt_completion", "prompt_completion.jsonl", 2, None, "empty_solution", None),
]


@pytest.mark.parametrize("adapter, name, index, question, outcome, meta", ROWS)
def test_fixture_rows_map_as_the_schema_says(adapter, name, index, question, outcome, meta):
    where, row = _fixture(name)[index]
    got = ADAPTERS[adapter](row, where)
    if question is None:
        assert got == outcome
        return
    assert got["question"].startswith(question) and got["style"] == outcome and got["meta"] == meta
    assert got["solution"]


def test_openmath2_keeps_its_expected_answer_and_uses_it_when_no_box():
    where, row = _fixture("openmath2.jsonl")[3]
    assert ADAPTERS["openmath2"](row, where)["answer"] == "7"
    from arithmo.data.transforms import format_cot_answer

    completion, answer, action = format_cot_answer(row["generated_solution"], "7")
    assert (answer, action) == ("7", "appended_source_answer") and completion.endswith("\nThe answer is: 7")
    assert format_cot_answer(row["generated_solution"])[2] == "no_answer"  # without it: nothing to write


@pytest.mark.parametrize("adapter, row, message", [
    ("dart_math", {"problem": "q", "solution": "s"}, r"missing field\(s\) 'query', 'response' for the DART-Math"),
    ("openmath2", {"question": "q", "generated_solution": "s"}, r"'problem' for the OpenMathInstruct-2"),
    ("messages", {"text": "q"}, r"missing field 'messages' or 'conversations' for the chat messages format"),
    ("messages", {"messages": [{"role": "narrator", "content": "x"}]}, r"turn 0 has unknown role 'narrator'"),
    ("messages", {"messages": [{"speaker": "user", "text": "x"}]}, r"turn 0 needs role\+content .* or from\+value"),
    ("messages", {"messages": "What is 2+2?"}, r"expected a list of turns, got str"),
    ("alpaca", {"instruction": "q"}, r"missing field 'output' for the alpaca format"),
    ("prompt_completion", {"prompt": [{"role": "user", "content": "q"}], "completion": "a"},
     r"both be text or both be message lists"),
])
def test_rows_outside_the_format_fail_naming_row_and_field(adapter, row, message):
    with pytest.raises(DataError, match=message) as err:
        ADAPTERS[adapter](row, "file.jsonl:7")
    assert "file.jsonl:7" in str(err.value)


def test_the_fixture_recipe_builds_and_accounts_for_every_row(tmp_path):
    manifest = build_from_recipe(FIXTURES / "recipe.yaml", tmp_path, log=lambda line: None)
    sources = manifest["sources"]
    assert manifest["totals"]["balanced"]
    for name, src in sources.items():
        assert src["rows_in"] == src["rows_out"] + sum(src["dropped"].values()), name
    assert sources["chat_openai"]["dropped"] == {"multi_turn": 2, "non_text_content": 1}
    assert sources["alpaca"]["dropped"] == {"empty_question": 1, "no_answer": 1}  # the program row is not CoT
    assert sources["openmath2"]["dropped"] == {}  # the unboxed row gets its expected_answer line
    # data_recipes/README.md's row for this recipe
    assert (manifest["totals"]["rows_in"], manifest["totals"]["rows_out"]) == (30, 21)
    actions = manifest["transforms"]["actions"]
    assert actions["system_prompt_dropped"] == 3 and actions["answer_appended_source_answer"] == 1
    records = [json.loads(line) for line in open(tmp_path / "train.jsonl")]
    assert all(r["completion"].splitlines()[-1].startswith("The answer is: ") for r in records)
    by_id = {r["id"]: r for r in records}
    assert by_id["gsm8k_train/0000001"]["completion"].endswith("The answer is: 1,300")  # #### folded
    assert by_id["dart_math/0000001"]["prompt"] == "Compute $\\dbinom{6}{2}$."
    assert "dart_math/0000002" in by_id  # the same query with another response is kept (not a duplicate)


def test_style_pot_for_a_generic_file(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: p\nsources:\n  - {{name: progs, adapter: alpaca, path: {FIXTURES / 'alpaca.jsonl'}, "
                      "style: pot}\ndecontaminate: {enabled: false}\nval_size: 0\n")
    manifest = build_from_recipe(recipe, tmp_path / "out", log=lambda line: None)
    assert manifest["sources"]["progs"]["out_by_style"] == {"pot": 3}
    with pytest.raises(ConfigError, match="the dart_math adapter knows its style"):
        load_config(DataConfig, {"sources": [{"name": "d", "adapter": "dart_math", "path": "x", "style": "pot"}]})
    with pytest.raises(ConfigError, match="'test' is what evaluation scores"):
        load_config(DataConfig, {"sources": [{"name": "g", "adapter": "gsm8k_train", "hub": "openai/gsm8k",
                                              "config": "main", "splits": ["test"]}]})


def test_real_gsm8k_and_math_rows_read_through_the_train_adapters():
    rows = list(read_file_rows(shared_file("gsm8k/train_first500.jsonl")))
    mapped = [ADAPTERS["gsm8k_train"](row, where) for where, row in rows]
    assert all(isinstance(m, dict) and "####" in m["solution"] for m in mapped)
    # the MATH adapter on MATH's real schema (test rows here, only to check the columns)
    where, row = next(iter(read_file_rows(shared_file("math/test_dev500.jsonl"))))
    got = ADAPTERS["math_train"](row, where)
    assert got["meta"] == {"level": row["level"], "type": row["type"]} and "\\boxed" in got["solution"]


@pytest.mark.parametrize("hub, adapter", [("hkust-nlp/dart-math-hard", "dart_math"),
                                          ("hkust-nlp/dart-math-uniform", "dart_math"),
                                          ("nvidia/OpenMathInstruct-2", "openmath2"),
                                          ("AI-MO/NuminaMath-CoT", "numinamath"),
                                          ("openai/gsm8k", "gsm8k_train"),
                                          ("EleutherAI/hendrycks_math", "math_train")])
def test_adapter_columns_are_on_the_card_and_fixtures_use_exactly_them(hub, adapter):
    assert set(COLUMNS[adapter]) <= set(HUB_SCHEMAS[hub]["columns"])
    fixture = {"dart_math": "dart_math.jsonl", "openmath2": "openmath2.jsonl", "numinamath": "numinamath.jsonl",
               "gsm8k_train": "gsm8k_train.jsonl", "math_train": "math_train.jsonl"}[adapter]
    for _, row in _fixture(fixture):
        assert set(row) == set(HUB_SCHEMAS[hub]["columns"]) - ({"idx"} if adapter == "math_train" else set())
