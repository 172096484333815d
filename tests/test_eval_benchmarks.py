"""Benchmark loaders: real GSM8K/MATH rows from ../shared/data, and field errors that name file, line and field."""

import json

import pytest

from _shared import REPO, shared_file
from arithmo.io import DataError
from arithmo.benchmarks import load_items

M401 = {"compare": {"abs_tol": 1e-3}}  # Math401's own scorer: |prediction - target| < 1e-3


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_gsm8k_real_rows():
    path = shared_file("gsm8k/test_first300.jsonl")
    items = load_items("gsm8k", path=str(path), n=5)
    assert [i["id"] for i in items] == [f"gsm8k/{k:05d}" for k in range(5)]
    assert items[0]["question"].startswith("Janet\u2019s ducks lay 16 eggs per day.")
    assert [i["answer"] for i in items] == ["18", "3", "70000", "540", "20"]
    assert all(i["benchmark"] == "gsm8k" and i["meta"] == {} for i in items)
    assert len(load_items("gsm8k", path=str(path))) == 300


def test_gsm8k_removes_thousands_separators():
    path = shared_file("gsm8k/train_first500.jsonl")
    rows = [json.loads(line) for line in open(path)]
    items = load_items("gsm8k", path=str(path))
    with_comma = [(r, i) for r, i in zip(rows, items) if "," in r["answer"].rsplit("####", 1)[1]]
    assert with_comma, "the real train rows include answers like '2,125'"
    for row, item in with_comma:
        assert item["answer"] == row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
        assert "," not in item["answer"]


def test_metamath_eval_copy_reads_as_gsm8k():
    path = shared_file("metamath_eval/GSM8K_test_first300.jsonl")
    gsm = load_items("gsm8k", path=str(shared_file("gsm8k/test_first300.jsonl")), n=20)
    meta = load_items("gsm8k", path=str(path), n=20)
    assert [(i["question"], i["answer"]) for i in meta] == [(i["question"], i["answer"]) for i in gsm]


def test_math_real_rows_keep_level_and_type():
    path = shared_file("math/test_dev500.jsonl")
    items = load_items("math", path=str(path), n=3)
    assert items[0] == {
        "id": "math/0", "benchmark": "math",
        "question": "How many vertical asymptotes does the graph of $y=\\frac{2}{x^2+x-6}$ have?",
        "answer": "2", "meta": {"level": "Level 3", "type": "Algebra"}}
    assert items[2]["id"] == "math/22" and items[2]["answer"] == "5"
    everything = load_items("math", path=str(path))
    assert len(everything) == 500
    assert {i["meta"]["level"] for i in everything} == {f"Level {k}" for k in range(1, 6)}
    assert len({i["meta"]["type"] for i in everything}) == 7
    assert all(i["answer"] for i in everything)


def test_math_gold_is_the_last_boxed(tmp_path):
    rows = [{"problem": "p", "level": "Level 1", "type": "Algebra", "idx": 7,
             "solution": "First $\\boxed{3}$, then in the end $\\boxed{\\frac{1}{2}}$."}]
    items = load_items("math", path=str(write_jsonl(tmp_path / "m.jsonl", rows)))
    assert items[0]["answer"] == "\\frac{1}{2}"


def test_math500_and_svamp_schemas(tmp_path):
    # Synthetic rows in the real column layouts of HuggingFaceH4/MATH-500 and ChilleD/SVAMP.
    math500 = [{"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "answer": "2",
                "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"}]
    svamp = [{"ID": "chal-1", "Body": "Jack had 8 pens.", "Question": "He lost 3. How many are left?",
              "Equation": "( 8.0 - 3.0 )", "Answer": 5.0, "Type": "Subtraction"}]
    item = load_items("math500", path=str(write_jsonl(tmp_path / "m5.jsonl", math500)))[0]
    assert item == {"id": "math500/test/prealgebra/1.json", "benchmark": "math500", "question": "What is $1+1$?",
                    "answer": "2", "meta": {"level": "Level 1", "type": "Prealgebra"}}
    item = load_items("svamp", path=str(write_jsonl(tmp_path / "sv.jsonl", svamp)))[0]
    assert item == {"id": "svamp/chal-1", "benchmark": "svamp",
                    "question": "Jack had 8 pens. He lost 3. How many are left?", "answer": "5",
                    "meta": {"type": "Subtraction"}}


def test_eval_item_file_and_formats(tmp_path):
    heldout = REPO / "data_recipes" / "tiny" / "heldout.jsonl"
    items = load_items("file", path=str(heldout))
    assert len(items) == 60 and items[0]["id"] == "tiny/000" and items[0]["benchmark"] == "tiny"
    assert items[0]["answer"] == "35" and items[0]["meta"] == {"type": "add", "level": "one_step"}
    # The same rows as .json and .parquet read the same.
    rows = [json.loads(line) for line in heldout.open()][:4]
    (tmp_path / "h.json").write_text(json.dumps(rows))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "h.parquet")
    assert load_items("file", path=str(tmp_path / "h.json")) == items[:4]
    assert load_items("file", path=str(tmp_path / "h.parquet")) == items[:4]


def test_missing_field_names_file_line_and_field(tmp_path):
    rows = [{"id": "a", "question": "q", "answer": "1"}, {"id": "b", "question": "q2"}]
    path = write_jsonl(tmp_path / "items.jsonl", rows)
    with pytest.raises(DataError, match=r"items\.jsonl:2: EvalItem row has no 'answer' field"):
        load_items("file", path=str(path))
    path = write_jsonl(tmp_path / "gsm.jsonl", [{"question": "q", "answer": "no final line"}])
    with pytest.raises(DataError, match=r"gsm\.jsonl:1: GSM8K answer has no '#### <number>'"):
        load_items("gsm8k", path=str(path))
    path = write_jsonl(tmp_path / "math.jsonl", [{"problem": "p", "solution": "s \\boxed{1}", "type": "Algebra"}])
    with pytest.raises(DataError, match=r"math\.jsonl:1: math row has no 'level' field"):
        load_items("math", path=str(path))
    path = write_jsonl(tmp_path / "nobox.jsonl", [{"problem": "p", "solution": "no box", "level": "Level 1",
                                                   "type": "Algebra"}])
    with pytest.raises(DataError, match=r"nobox\.jsonl:1: MATH solution has no \\boxed"):
        load_items("math", path=str(path))


def test_user_errors(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "question": "q", "answer": "1"},
                                              {"id": "a", "question": "q", "answer": "2"}])
    with pytest.raises(DataError, match=r"d\.jsonl:2: duplicate item id 'a'"):
        load_items("file", path=str(path))
    with pytest.raises(DataError, match="unknown benchmark 'gsm9k'"):
        load_items("gsm9k", path=str(path))
    with pytest.raises(DataError, match="n: expected a positive number"):
        load_items("file", path=str(path), n=0)
    with pytest.raises(DataError, match="nowhere.jsonl: not found: expected a benchmark file"):
        load_items("gsm8k", path=str(tmp_path / "nowhere.jsonl"))
    with pytest.raises(DataError, match="benchmark=file needs `path`"):
        load_items("file")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="no items read"):
        load_items("file", path=str(tmp_path / "empty.jsonl"))


# Fixtures in each new benchmark's real schema (tests/fixtures/benchmarks, columns as in tests/hub_schemas.py).
FIXTURES = REPO / "tests" / "fixtures" / "benchmarks"


@pytest.mark.parametrize("benchmark, fixture, expected", [
    # GSM8K-Platinum: the gold after '####' without its thousands separator; the cleaning status kept
    ("gsm8k_platinum", "gsm8k_platinum.jsonl",
     [("gsm8k_platinum/00000", "16", {"cleaning_status": "consensus"}),
      ("gsm8k_platinum/00001", "5000", {"cleaning_status": "revised"}),
      ("gsm8k_platinum/00002", "5", {"cleaning_status": "verified"})]),
    # MGSM: the test split's `answer` is null; the gold is answer_number (an int: no '.0')
    ("mgsm_zh", "mgsm_zh.jsonl", [("mgsm_zh/00000", "22", {}), ("mgsm_zh/00001", "15", {})]),
    # CMATH: `golden`, and the school grade as the level (by-level tables)
    ("cmath", "cmath.jsonl", [("cmath/0", "7", {"level": "Grade 1"}), ("cmath/1", "300", {"level": "Grade 4"}),
                              ("cmath/2", "60", {"level": "Grade 6"})]),
])
def test_new_benchmarks_read_their_real_schema(benchmark, fixture, expected):
    items = load_items(benchmark, path=FIXTURES / fixture)
    assert [(i["id"], i["answer"], i["meta"]) for i in items] == expected
    assert all(i["benchmark"] == benchmark and i["question"] for i in items)


def test_a_row_without_the_gold_column_names_it(tmp_path):
    path = write_jsonl(tmp_path / "mgsm.jsonl", [{"question": "1+1?", "answer": None}])
    with pytest.raises(DataError, match=r"mgsm.jsonl:1: mgsm row has no 'answer_number' field"):
        load_items("mgsm_zh", path=path)


@pytest.mark.parametrize("row, message", [
    ({"question": "1+1?", "answer": None, "answer_number": None}, "mgsm row has 'answer_number' empty"),  # null gold
    ({"question": "  ", "answer_number": 2}, "mgsm row has an empty 'question'"),                        # blank question
])
def test_null_or_blank_fields_are_named(tmp_path, row, message):
    path = write_jsonl(tmp_path / "m.jsonl", [row])
    with pytest.raises(DataError, match=message):
        load_items("mgsm_zh", path=path)


def test_a_folder_as_path_says_so(tmp_path):
    with pytest.raises(DataError, match="is a folder, not a benchmark file"):
        load_items("gsm8k", path=tmp_path)


# Issue 26: the reasoning-model sets, each read from a fixture in its card's schema.
@pytest.mark.parametrize("benchmark, fixture, expected", [
    # AIME 2024: "025"/"033" are the integers 25/33 (a leading zero must not survive as text); the part from the url
    ("aime24", "aime24.jsonl", [("aime24/60", "204", {"type": "AIME I"}), ("aime24/61", "25", {"type": "AIME I"}),
                                ("aime24/75", "33", {"type": "AIME II"})]),
    # AIME 2025: no id column: ids by position
    ("aime25", "aime25.jsonl", [("aime25/00000", "70", {}), ("aime25/00001", "16", {}),
                                ("aime25/00002", "117", {})]),
    # AMC 2023: float answers lose a needless '.0' (27.0 -> 27, not "27.0")
    ("amc23", "amc23.jsonl", [("amc23/0", "27", {}), ("amc23/1", "36", {}), ("amc23/2", "45", {})]),
    # OlympiadBench: `$...$` stripped; several answers (one string or several list entries) joined; an interval
    # and an expression kept whole; unit and answer type in meta
    ("olympiadbench", "olympiadbench.jsonl", [
        ("olympiadbench/1606", "7", {"type": "Number Theory", "answer_type": "Numerical", "is_multiple_answer": False}),
        ("olympiadbench/2498", "2,3", {"type": "Algebra", "answer_type": "Numerical", "is_multiple_answer": True}),
        ("olympiadbench/2510", "(-\\infty, 2]", {"type": "Algebra", "answer_type": "Interval",
                                                 "is_multiple_answer": False}),
        ("olympiadbench/2634", "4 \\sqrt{3}", {"type": "Geometry", "unit": "cm", "answer_type": "Numerical",
                                               "is_multiple_answer": False}),
        ("olympiadbench/2701", "2, 1", {"type": "Algebra", "answer_type": "Numerical", "is_multiple_answer": True})]),
    ("minerva_math", "minerva_math.jsonl", [("minerva_math/00000", "1.6", {}), ("minerva_math/00001", "9.6", {}),
                                            ("minerva_math/00002", "300", {})]),
    # GSM-Plus: thousands separators removed; the critical-thinking gold "None" kept as released
    ("gsm_plus", "gsm_plus.jsonl", [("gsm_plus/00000", "26", {"type": "numerical substitution"}),
                                    ("gsm_plus/00001", "15930", {"type": "digit expansion"}),
                                    ("gsm_plus/00002", "None", {"type": "critical thinking"})]),
    # Math401: the released value, trailing zeros and all (grading compares values)
    ("math401", "math401.jsonl", [("math401/00000", "0", M401), ("math401/00001", "7", M401),
                                  ("math401/00002", "0.7400", M401), ("math401/00003", "0.1928", M401)]),
    ("math23k", "math23k.jsonl", [("math23k/1", "12", {}), ("math23k/2", "5/12", {}), ("math23k/3", "50%", {})]),
])
def test_reasoning_sets_read_their_real_schema(benchmark, fixture, expected):
    items = load_items(benchmark, path=FIXTURES / fixture)
    assert [(i["id"], i["answer"], i["meta"]) for i in items] == expected
    assert all(i["benchmark"] == benchmark and i["question"] for i in items)


@pytest.mark.parametrize("benchmark, row, expected_id, expected_gold", [
    # Maxwell-Jia's AIME 2024 copy: capitalised columns, an int answer, "2024-II-4" ids
    ("aime24", {"ID": "2024-II-4", "Problem": "p", "Solution": "s", "Answer": 33}, "aime24/2024-II-4", "33"),
    # AI-MO's AMC copy names the question `problem`
    ("amc23", {"id": 7, "problem": "p", "answer": 1.5, "url": "u"}, "amc23/7", "1.5"),
    # Math401 as released on GitHub: query/response
    ("math401", {"query": "1+1=", "response": "2"}, "math401/00000", "2"),
    # a Minerva copy with a worked solution only: its last box
    ("minerva_math", {"problem": "p", "solution": "so \\boxed{4}"}, "minerva_math/00000", "4"),
    # OlympiadBench with a bare string answer (math-ai's copy)
    ("olympiadbench", {"question": "q", "answer": "$12$"}, "olympiadbench/00000", "12"),
])
def test_other_copies_of_the_same_sets_read_too(tmp_path, benchmark, row, expected_id, expected_gold):
    items = load_items(benchmark, path=write_jsonl(tmp_path / "x.jsonl", [row]))
    assert (items[0]["id"], items[0]["answer"]) == (expected_id, expected_gold)


@pytest.mark.parametrize("benchmark, row, message", [
    ("aime24", {"problem": "p", "answer": "12.5"}, "aime24 answer should be an integer"),  # AIME golds are 0-999
    ("aime25", {"question": "q"}, "aime25 row has no 'answer' or 'Answer' field"),          # gold missing
    ("olympiadbench", {"question": "q", "final_answer": [{"a": 1}]}, "should be a list of text answers"),
    ("math23k", {"id": "1", "original_text": "x", "equation": "x=1"}, "math23k row has no 'ans' field"),
    ("gsm_plus", {"question": " ", "answer": "1"}, "gsm_plus row has an empty 'question'"),  # blank question
])
def test_reasoning_sets_name_bad_rows(tmp_path, benchmark, row, message):
    with pytest.raises(DataError, match=message):
        load_items(benchmark, path=write_jsonl(tmp_path / "x.jsonl", [row]))


# `path=` reads .json files as the sets ship them (issue 26 review). Rows: (file text, expected (where tail,
# answer) per row, or a DataError message). JSON Lines saved as .json and Math23K's pretty-printed objects back to
# back (its original Math_23K.json) were "not valid JSON (Extra data)".
_M23K_OBJECT = ('{{\n    "id":"{i}",\n    "original_text":"甲{i}",\n    "segmented_text":"甲",\n'
                '    "equation":"x=1+{i}",\n    "ans":"{a}"\n}}\n')


@pytest.mark.parametrize("text, expected", [
    # JSON Lines in a .json file
    ('{"id": "1", "original_text": "a", "ans": "2"}\n{"id": "2", "original_text": "b", "ans": "3"}\n',
     [(":1", "2"), (":2", "3")]),
    # pretty-printed objects one after another (Math23K's original file)
    (_M23K_OBJECT.format(i=1, a=2) + _M23K_OBJECT.format(i=2, a=3), [(":1", "2"), (":8", "3")]),
    # back to back without a newline, and a blank line between
    ('{"id": "1", "original_text": "a", "ans": "2"}{"id": "2", "original_text": "b", "ans": "3"}',
     [(":1", "2"), (":1", "3")]),
    ('{"id": "1", "original_text": "a", "ans": "2"}\n\n\n{"id": "2", "original_text": "b", "ans": "3"}',
     [(":1", "2"), (":4", "3")]),
    # the forms read before keep working: a list, {"data": [...]}, one object
    ('[{"id": "1", "original_text": "a", "ans": "2"}]', [("[0]", "2")]),
    ('{"data": [{"id": "1", "original_text": "a", "ans": "2"}]}', [("[0]", "2")]),
    ('{"id": "1", "original_text": "a", "ans": "2"}', [("[0]", "2")]),
    # must NOT read: damage in the second object names its line; a non-object value names its line
    ('{"id": "1", "original_text": "a", "ans": "2"}\n{"id": "2", "original_text": "b", "ans": }\n',
     r"m\.json:2: not valid JSON \(Expecting value at column"),
    ('{"id": "1", "original_text": "a", "ans": "2"}\n[1, 2]\n', r"m\.json:2: expected a JSON object, got list"),
    ('{"id": "1", "original_text": "a", "ans": "2"}\n7\n', r"m\.json:2: expected a JSON object, got int"),
    ('{"id": "1", "original_text": "a", "ans": "2"\n', r"m\.json: not valid JSON .* line 2, column 1"),
])
def test_json_files_in_the_forms_sets_ship(tmp_path, text, expected):
    path = tmp_path / "m.json"
    path.write_text(text, encoding="utf-8")
    if isinstance(expected, str):
        with pytest.raises(DataError, match=expected):
            load_items("math23k", path=path)
        return
    items = load_items("math23k", path=path)
    assert [item["answer"] for item in items] == [answer for _, answer in expected]
    from arithmo.io import read_file_rows

    wheres = [where for where, _ in read_file_rows(path)]
    assert [where[len(str(path)):] for where in wheres] == [tail for tail, _ in expected]



# Each benchmark's own gold convention, graded through predict_text (issue 26 review). Rows: (benchmark, row,
# completion, expected correct). Math401's scorer accepts |prediction - gold| < 1e-3 (math401-llm README); a
# 1e-4 relative tolerance failed 16/83 and 0.19277 against its 4-decimal gold 0.1928.
def _ob(final, **extra):
    return {"id": 1, "question": "q", "final_answer": final, "is_multiple_answer": False, "unit": None,
            "answer_type": "Numerical", "subfield": "Algebra", **extra}


CONVENTIONS = [
    ("math401", {"question": "16÷83=", "answer": "0.1928"}, "\\boxed{0.19277}", True),
    ("math401", {"question": "16÷83=", "answer": "0.1928"}, "\\boxed{16/83}", True),
    ("math401", {"question": "16÷83=", "answer": "0.1928"}, "\\boxed{0.1928}", True),
    ("math401", {"question": "16÷83=", "answer": "0.1928"}, "\\boxed{0.2}", False),        # 7e-3 off
    ("math401", {"question": "16÷83=", "answer": "0.1928"}, "\\boxed{0.1940}", False),     # 1.2e-3 off
    ("math401", {"question": "sqrt(2)=", "answer": "1.4142"}, "\\boxed{\\sqrt{2}}", True),
    ("math401", {"question": "sqrt(2)=", "answer": "1.4142"}, "\\boxed{1.41}", False),
    ("math401", {"question": "3^(-2)=", "answer": "0.1111"}, "\\boxed{0.111}", True),
    ("math401", {"question": "3^(-2)=", "answer": "0.1111"}, "\\boxed{0.12}", False),
    ("math401", {"question": "123*456=", "answer": "56088"}, "\\boxed{56089}", False),    # integers stay exact
    ("math401", {"question": "0.5+0.24=", "answer": "0.7400"}, "\\boxed{0.75}", False),
    # another benchmark keeps its verdict: no tolerance beyond the grader's
    ("minerva_math", {"question": "q", "answer": "0.1928"}, "\\boxed{0.19277}", False),
    ("gsm_plus", {"question": "q", "solution": "s", "answer": "0.1928", "perturbation_type": "t"},
     "The answer is: 0.19277", False),
    # OlympiadBench's `error`: a numeric answer within it is right; without the field, the grader's rule
    ("olympiadbench", _ob(["$1.25$"], error="0.01"), "\\boxed{1.26}", True),
    ("olympiadbench", _ob(["$1.25$"], error="0.01"), "\\boxed{1.27}", False),
    ("olympiadbench", _ob(["$1.25$"]), "\\boxed{1.26}", False),
    # OlympiadBench answers written as several inline formulas: every `$` goes
    ("olympiadbench", _ob(["$\\frac{1}{2}$, $3$"]), "\\boxed{\\frac12, 3}", True),
    ("olympiadbench", _ob(["$\\frac{1}{2}$, $3$"]), "\\boxed{\\frac12, 4}", False),
    # Math23K's mixed number 3(1/2) is 3 1/2, not 3 * 1/2
    ("math23k", {"id": "7", "original_text": "d", "equation": "x=3+(1/2)", "ans": "3(1/2)"}, "\\boxed{3.5}", True),
    ("math23k", {"id": "7", "original_text": "d", "equation": "x=3+(1/2)", "ans": "3(1/2)"},
     "\\boxed{3\\frac{1}{2}}", True),
    ("math23k", {"id": "7", "original_text": "d", "equation": "x=3+(1/2)", "ans": "3(1/2)"}, "\\boxed{1.5}", False),
    ("math23k", {"id": "7", "original_text": "d", "equation": "x=3+(1/2)", "ans": "3(1/2)"}, "\\boxed{31/2}", False),
    ("math23k", {"id": "8", "original_text": "d", "equation": "x=1/3", "ans": "(1/3)"}, "\\boxed{1/3}", True),
]


@pytest.mark.parametrize("benchmark, row, completion, expected", CONVENTIONS)
def test_each_benchmark_grades_by_its_own_convention(tmp_path, benchmark, row, completion, expected):
    from arithmo.evaluation.scoring import predict_text, regrade

    path = tmp_path / f"{benchmark}.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    items = load_items(benchmark, path=path)
    lines = predict_text(items, "cot", lambda prompts, n, sampled: [[completion] * n for _ in prompts], [None],
                         tokenizer=None, template="plain", pot_hint="", run=None, grade_timeout_s=2.0)
    assert lines[0]["correct"] is expected, (items[0], lines[0]["extracted"])
    # a regrade of the saved line keeps the convention (it travels in the line)
    saved = json.loads(json.dumps(lines[0]))
    fresh, _ = regrade([saved], {items[0]["id"]: items[0]["answer"]}, "cot", run=None, grade_timeout_s=2.0)
    assert fresh[0]["correct"] is expected


def test_olympiadbench_keeps_its_error_field_and_refuses_a_bad_one(tmp_path):
    path = tmp_path / "ob.jsonl"
    path.write_text(json.dumps(_ob(["$1.25$"], error="1e-2")) + "\n" + json.dumps(_ob(["$2$"], id=2, error="x")) + "\n")
    with pytest.raises(DataError, match=r"ob\.jsonl:2: olympiadbench field 'error' should be a precision"):
        load_items("olympiadbench", path=path)
    items = load_items("olympiadbench", path=path, n=1)
    assert items[0]["meta"]["error"] == "1e-2" and items[0]["meta"]["compare"] == {"abs_tol": 0.01}
