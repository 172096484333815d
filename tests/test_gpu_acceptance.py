"""bench/gpu_acceptance.py's CPU dry run: every part runs or says why it cannot, end to end at tiny shapes, so the
GPU run is a single call (`python bench/gpu_acceptance.py --out $OUT`)."""

import importlib.util
import json
import sys

import pytest

from _shared import REPO

spec = importlib.util.spec_from_file_location("gpu_acceptance", REPO / "bench" / "gpu_acceptance.py")
acceptance = importlib.util.module_from_spec(spec)
sys.modules["gpu_acceptance"] = acceptance
spec.loader.exec_module(acceptance)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("acceptance")
    code = acceptance.main(["--tiny", "--out", str(out)])
    return code, json.loads((out / "summary.json").read_text()), out


def test_the_tiny_dry_run_goes_end_to_end(dry_run):
    code, results, out = dry_run
    assert code == 0
    # (part, what its status must start with on this machine): parts that need CUDA or a missing package say why
    cuda = acceptance.cuda()
    expected = [("model", "ok"), ("planner", "ok"), ("engines", "ok"), ("grpo", "ok"),
                ("merge", "ok" if cuda else "skipped: the 4-bit reference model needs CUDA"),
                ("vllm", "ok" if importlib.util.find_spec("vllm") else "skipped: vllm not installed")]
    for part, status in expected:
        assert results[part]["status"].startswith(status), (part, results[part])
    # must NOT: no part failed, and every line of results.jsonl is one part
    assert not any(str(row["status"]).startswith("failed") for row in results.values())
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [row["part"] for row in lines] == list(acceptance.PARTS)


def test_planner_rows_and_engines_carry_predictions(dry_run):
    _, results, _ = dry_run
    rows = results["planner"]["rows"]
    assert [row["shape"] for row in rows] == ["1x32", "2x32", "1x64"]
    assert all(row["predicted_reserved_gib"] > 0 and row["loss_finite"] for row in rows)
    engines = results["engines"]["engines"]
    assert set(engines) == {"hf", "liger", "kernels", "unsloth"}
    assert engines["hf"]["status"] == "ok" and engines["hf"]["tokens_per_s"] > 0
    assert engines["hf"]["predicted_reserved_gib"] > 0
    for name, row in engines.items():
        assert row["status"] == "ok" or row["status"].startswith("skipped: "), (name, row)  # never silent
    assert results["grpo"]["steps"] == 2 and results["grpo"]["predicted_reserved_gib"] > 0


def test_a_failing_part_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    def broken(ctx):
        raise RuntimeError("boom")

    def missing(ctx):
        raise acceptance.Skip("needs a package")

    monkeypatch.setattr(acceptance, "make_model", lambda out, tiny: out)
    monkeypatch.setattr(acceptance, "PARTS", {"planner": broken, "vllm": missing, "grpo": lambda ctx: {"x": 1}})
    results = acceptance.run(tmp_path, True, 60.0, ["planner", "vllm", "grpo"])
    assert results["planner"]["status"] == "failed: RuntimeError: boom"
    assert results["vllm"]["status"] == "skipped: needs a package"
    assert results["grpo"]["status"] == "ok" and results["grpo"]["x"] == 1
    # past the time budget: skipped, not run
    late = acceptance.run(tmp_path / "late", True, -1.0, ["grpo"])
    assert late["grpo"]["status"] == "skipped: time budget"
    with pytest.raises(SystemExit, match="unknown part"):
        acceptance.run(tmp_path, True, 60.0, ["nonsense"])


def test_the_model_is_not_written_under_out(dry_run):
    """--out is what comes back from the GPU machine: the random model (14.5 GB at 7B) goes to a temporary folder
    outside it and is removed at the end."""
    _, results, out = dry_run
    model_dir = results["model"]["dir"]
    assert results["model"]["temporary"] is True
    assert not str(model_dir).startswith(str(out))
    from pathlib import Path

    assert not Path(model_dir).exists()  # cleaned up
    weights = [p for p in out.rglob("*") if p.name == "config.json" or p.name.startswith("model")]
    assert weights == [], weights  # must NOT: no model config or weight shard under out (adapters only)


# (TMPDIR relative to out, where the model may go): never under out, whatever TMPDIR says
SCRATCH = [("elsewhere", False), ("inside", False), ("same", False)]


@pytest.mark.parametrize("where, under_out", SCRATCH)
def test_scratch_folder_is_never_under_out(tmp_path, monkeypatch, where, under_out):
    import tempfile

    out = tmp_path / "out"
    out.mkdir()
    tmp = {"elsewhere": tmp_path / "tmp", "inside": out / "tmp", "same": out}[where]
    tmp.mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp))
    root = acceptance.scratch_root(out)
    assert str(root).startswith(str(out.resolve())) is under_out, root


# (fused linear cross-entropy on in the Liger patch, the loss the planner must be told): one source for both
LIGER = [(False, "chunked"), (True, "fused")]


@pytest.mark.parametrize("fused, loss", LIGER)
def test_liger_prediction_matches_the_child(monkeypatch, fused, loss):
    monkeypatch.setitem(acceptance.LIGER_PATCH, "fused_linear_cross_entropy", fused)
    assert acceptance.liger_loss() == loss
    child = acceptance.RECIPE_CHILD.format(repo="/r", liger=True, patch=acceptance.LIGER_PATCH, argv=[])
    assert f"'fused_linear_cross_entropy': {fused}" in child
    assert f"'fused_linear_cross_entropy': {not fused}" not in child  # must NOT run the other loss
