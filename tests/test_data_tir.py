"""NuminaMath-TIR rows (the fixture is in the dataset's real schema): the adapter reads them as style tir, and the
build re-runs every code block in the sandbox, dropping rows whose recorded outputs the code does not reproduce,
counted in the manifest (issue 19)."""

import json

from _shared import REPO

from arithmo.data import build_from_recipe
from arithmo.data.verify import tir_blocks
from arithmo.prompts import TIR_INSTRUCTION

FIXTURE = REPO / "data_recipes" / "fixtures" / "numinamath_tir.jsonl"


def test_a_build_keeps_the_rows_whose_outputs_reproduce(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"name: tir\nsources:\n  - {{name: tir, adapter: numinamath_tir, path: {FIXTURE}}}\n"
                      "decontaminate: {enabled: false}\ndedup: {exact: true, near: false}\n"
                      "transforms: {lowercase_share: 0.0, program_timeout_s: 5.0}\nval_size: 0\n")
    manifest = build_from_recipe(recipe, tmp_path / "out", log=lambda line: None)
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    kept = {row["completion"].split("\\boxed{")[1].split("}")[0] for row in rows}
    # 210 (one block); 28 (the second block uses `side` from the first: state persists); [2, 3] (sympy);
    # 0.3333 (0.333333333333333 recorded, 0.3333333333333333 printed: the same value); undefined (a recorded
    # error line the code reproduces)
    assert kept == {"210", "28", "2, 3", "0.3333", "\\text{undefined"}
    assert all(row["style"] == "tir" and row["prompt"].endswith(TIR_INSTRUCTION) for row in rows)
    source = manifest["sources"]["tir"]
    assert source["dropped"] == {"tir_no_code": 1, "tir_output_mismatch": 1}  # "2 + 2" has no code; 7*8 != 54
    assert source["rows_in"] == 7 and source["rows_out"] == 5 and source["balanced"]
    assert manifest["transforms"]["actions"]["tir_verified"] == 5
    assert manifest["transforms"]["actions"]["tir_blocks_run"] == 7
    assert manifest["sandbox"], "which sandbox layers ran the code is recorded"


def test_tir_blocks_pair_each_code_block_with_its_recorded_output():
    solution = json.loads(FIXTURE.read_text().splitlines()[1])["solution"]
    assert tir_blocks(solution) == [("import math\nside = math.isqrt(49)\nprint(side)\n", "7\n"),
                                    ("print(4 * side)\n", "28\n")]
