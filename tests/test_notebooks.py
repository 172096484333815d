"""The three notebooks, executed top to bottom in a real Jupyter kernel (nbclient) at the smallest settings.

Parameters are injected the way papermill does it: a cell tagged `injected-parameters` right after the cell
tagged `parameters`, so the notebooks run unchanged. The kernel starts in notebooks/ as Jupyter would.
Notebook 2 trains 3 steps of the tiny random model; notebook 3 scores that run on 2 held-out items and
launches the app on it. Together ~30 s on 2 cores (01: 2 s, 02: 13 s, 03: 11 s, measured 2026-11-24): they
stay in the default suite because running the notebooks is the point of these tests.
"""

import json

import pytest
from _demo_fakes import free_port
from _shared import REPO, write_sft_folder

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (the dev extra)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (the dev extra)")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (the dev extra)")

NOTEBOOKS = REPO / "notebooks"


def execute(name: str, parameters: dict, timeout_s: int = 600):
    """Run notebooks/<name> with `parameters` injected; return the executed notebook."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected exactly one cell tagged 'parameters', found {len(tagged)}"
    cell = nbformat.v4.new_code_cell("# injected by tests/test_notebooks.py\n"
                                     + "\n".join(f"{key} = {value!r}" for key, value in parameters.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(tagged[0] + 1, cell)
    client = nbclient.NotebookClient(notebook, timeout=timeout_s, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return notebook


def text_of(notebook) -> str:
    """Everything the notebook printed or displayed as text."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def images_in(notebook) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


@pytest.fixture(autouse=True)
def offline_kernel(monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")  # the kernel inherits it: no calls home
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_notebooks_define_nothing_of_their_own():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        assert "def " not in code and "class " not in code and "lambda" not in code, f"{path.name} defines code"
        assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
            f"{path.name} is saved with outputs; clear them"
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == [
        "01_data_recipe.ipynb", "02_train.ipynb", "03_eval_and_demo.ipynb"]


def test_01_builds_the_tiny_recipe_and_accounts_for_every_row(tmp_path):
    out = tmp_path / "tiny"
    notebook = execute("01_data_recipe.ipynb", {"OUT_DIR": str(out), "SHOW_ROWS": 1})
    manifest = json.loads((out / "manifest.json").read_text())
    totals = manifest["totals"]
    shown = text_of(notebook)
    assert f"working directory: {REPO}" in shown
    assert (f"total: {totals['rows_in']} rows in, {totals['rows_out']} out (train {totals['train']}, val "
            f"{totals['val']}), {sum(totals['dropped'].values())} dropped") in shown
    assert "==== cot:" in shown and "==== pot:" in shown and "COMPLETION:" in shown
    assert images_in(notebook) == 1  # the drops chart


@pytest.fixture(scope="module")
def trained_notebook(tiny_model_dir, tmp_path_factory):
    """Notebook 2 run for 3 steps on the tiny random model: (executed notebook, run folder)."""
    root = tmp_path_factory.mktemp("nb_train")
    data = write_sft_folder(root / "data", n_train=12, n_val=2)
    overrides = [f"model.name={tiny_model_dir}", f"data={data}", f"output_dir={root / 'runs'}", "name=nb",
                 "max_steps=3", "save_steps=3", "logging_steps=1", "micro_batch_size=2",
                 "model.max_seq_length=128", "overwrite=true"]
    notebook = execute("02_train.ipynb", {"GPU": False, "OVERRIDES": overrides})
    return notebook, root / "runs" / "nb"


def test_02_trains_and_plots_the_loss_curve(trained_notebook):
    notebook, run = trained_notebook
    assert (run / "adapter" / "adapter_config.json").is_file()
    losses = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    steps = sorted({row["step"] for row in losses if "loss" in row})
    assert steps == [1, 2, 3]
    shown = text_of(notebook)
    assert "preset smollm2_135m_cpu" in shown and "3 logged steps; loss" in shown
    assert images_in(notebook) == 1  # the loss curve


def test_03_scores_the_run_and_launches_the_app(trained_notebook):
    _, run = trained_notebook
    port = free_port()
    notebook = execute("03_eval_and_demo.ipynb", {
        "RUN": str(run), "EVAL_OVERRIDES": ["n=2", "max_new_tokens=16", "workers=1"], "CLOSE_APP": True,
        "APP_PORT": port})
    metrics = json.loads((run / "eval" / "heldout_pot" / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["style"] == "pot" and metrics["adapter"] == str(run / "adapter")
    shown = text_of(notebook)
    assert "1 results under" in shown and "0 unreadable file(s)" in shown
    assert "Q: Ines has 14 shells and gets 21 more." in shown and "1 sample in" in shown
    assert "app closed" in shown
    low, high = metrics["ci95"]["accuracy"]
    assert f"95% interval {low:.1%} to {high:.1%} (Wilson score)" in shown
    assert f"math-verify 0.9.0: {metrics['accuracy_math_verify']!r} on the same answers" in shown
    assert (run / "eval" / "heldout_pot" / "report.png").is_file()
    assert images_in(notebook) >= 2  # accuracy.png, and the results side by side with their intervals
    import socket

    with socket.socket() as probe:  # closed: nothing listens on the port any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0
