"""app.py driven the way a program (or a person's script) uses it: over HTTP with gradio_client.

The model is a scripted stand-in (tests/_demo_fakes.py) so answers are known; everything else is the real
app: the Gradio server, the queue, the session logic and the PoT sandbox. One test starts `python app.py`
itself on the tiny random model.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from _demo_fakes import ScriptedGenerator, free_port, import_app, is_pot_prompt
from _shared import REPO

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
from gradio_client import Client  # noqa: E402

from arithmo.app.session import DemoSession  # noqa: E402
from arithmo.app.files import Example  # noqa: E402

SHELLS = "Ines has 14 shells and gets 21 more. How many shells does Ines have now?"
PWNED = Path("/tmp") / f"arithmo-app-pwned-{uuid.uuid4().hex}"


def scripted_reply(prompt: str, use_adapter: bool, seed: int) -> str:
    """Shell counting gets right answers; 'Hack' gets a program that tries to touch a file outside."""
    if "Hack" in prompt:
        return f'```python\nimport os\nos.system("touch {PWNED}")\nprint(1)\n```'
    if not use_adapter:
        return "Ines has some shells. The answer is: 30"
    if is_pot_prompt(prompt):
        return "start = 14\nmore = 21\nprint(start + more)"
    return "Ines has 14 + 21 = 35 shells.\nThe answer is: 35"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app on a free local port with the scripted model; yields (client, generator, runs folder)."""
    saved = os.environ.get("GRADIO_ANALYTICS_ENABLED")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # offline: no calls home
    app = import_app()
    runs = tmp_path_factory.mktemp("runs")
    metrics = runs / "demo" / "eval" / "tiny_pot" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"benchmark": "tiny", "style": "pot", "n": 60, "accuracy": 0.45,
                                   "by_level": {"one_step": {"n": 40, "correct": 20, "accuracy": 0.5}},
                                   "by_type": {"add": {"n": 20, "correct": 15, "accuracy": 0.75}}}))
    (runs / "demo" / "eval" / "broken").mkdir()
    (runs / "demo" / "eval" / "broken" / "metrics.json").write_text("[]")
    generator = ScriptedGenerator(scripted_reply, delay_s=0.2)
    session = DemoSession(generator, examples=[Example(SHELLS, "35", "tiny held-out #1")])
    ui = app.build_ui(session, runs_dir=runs)
    ui.queue(default_concurrency_limit=1)
    _, url, _ = ui.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True)
    client = Client(url, verbose=False, analytics_enabled=False)
    yield client, generator, runs
    ui.close()
    session.close()
    if saved is None:
        os.environ.pop("GRADIO_ANALYTICS_ENABLED")
    else:
        os.environ["GRADIO_ANALYTICS_ENABLED"] = saved


def test_the_main_handlers_have_stable_api_names(served):
    client, _, _ = served
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/answer", "/compare", "/run_program", "/results", "/list_runs"} <= set(endpoints)


def test_a_cot_question_gets_an_answer(served):
    client, _, _ = served
    output, answer, status, program, execution, votes = client.predict(SHELLS, "cot", 0, 128, 1, api_name="/answer")
    assert output == "Ines has 14 + 21 = 35 shells.\nThe answer is: 35"
    assert answer == "35" and program == "" and execution == ""
    assert "Reference answer (tiny held-out #1): 35; the model's answer matches ✓." in status
    assert votes["data"] == []


def test_a_pot_question_gets_an_answer_from_the_sandbox_and_streams(served):
    client, _, _ = served
    job = client.submit(SHELLS, "pot", 0, 128, 1, api_name="/answer")
    output, answer, status, program, execution, _ = job.result(timeout=60)
    assert program == "start = 14\nmore = 21\nprint(start + more)" == output
    assert execution == "35\n" and answer == "35"
    streamed = [outputs[0] for outputs in job.outputs()]
    assert len(streamed) >= 3 and streamed[-1] == output
    assert any(0 < len(text) < len(output) for text in streamed)  # partial text arrived before the end


def test_a_malicious_program_is_contained(served):
    client, _, _ = served
    _, answer, status, program, execution, _ = client.predict("Hack the machine", "pot", 0, 64, 1, api_name="/answer")
    assert f"touch {PWNED}" in program
    assert execution == "error: PermissionError: sandbox refused os.system (running a shell)"
    assert answer == "" and not PWNED.exists()
    shown = client.predict(f"open({str(PWNED)!r}, 'w').write('owned')", api_name="/run_program")
    # the jail's /tmp is its own tmpfs (or, with the fallback layers, the write is refused): the host's stays clean
    assert not PWNED.exists(), shown
    assert shown.startswith("error: PermissionError: sandbox refused") or "printed answer: 5" in shown


@pytest.mark.parametrize("question, message", [
    ("", "⚠️ Please type a question: the question box is empty."),
    ("   \n ", "⚠️ Please type a question: the question box is empty."),
    ("7" * 4001, "⚠️ The question is 4,001 characters long; the limit is 4,000."),
])
def test_empty_or_long_input_gets_a_clear_message(served, question, message):
    client, generator, _ = served
    calls = len(generator.calls)
    output, answer, status, *_ = client.predict(question, "cot", 0, 64, 1, api_name="/answer")
    assert status.startswith(message) and answer == "" and output == ""
    assert len(generator.calls) == calls  # nothing was generated


def test_k_samples_vote(served):
    client, _, _ = served
    *_, status, _, _, votes = client.predict(SHELLS, "cot", 0.7, 64, 3, api_name="/answer")
    assert votes["headers"] == ["answer", "votes", "share", "samples"]
    assert votes["data"] == [["35", 3, "100%", "1, 2, 3"]]
    assert "Majority vote: 35 with 3 of 3 samples." in status


def test_side_by_side_base_and_adapter(served):
    client, _, _ = served
    base_output, base_answer, _, tuned_output, tuned_answer, _ = client.predict(SHELLS, "cot", 0, 64,
                                                                                api_name="/compare")
    assert (base_answer, tuned_answer) == ("30", "35")
    assert base_output.startswith("Ines has some shells") and tuned_output.endswith("The answer is: 35")


def test_the_results_panel_reads_metrics_files(served):
    client, _, runs = served
    overview, by_level, by_type, notes, _ = client.predict("demo", api_name="/results")
    assert overview["data"] == [["demo/tiny_pot", "tiny", "pot", 60, 45.0, None, None, None, None, None, "", ""]]
    assert by_level["data"] == [["demo/tiny_pot", "one_step", 40, 20, 50.0]]
    assert by_type["data"] == [["demo/tiny_pot", "add", 20, 15, 75.0]]
    assert notes.startswith("1 result file(s) for demo. 1 file(s) skipped:")
    assert f"{runs}/demo/eval/broken/metrics.json: expected a JSON object" in notes
    *_, missing, _ = client.predict("nope", api_name="/results")
    assert missing.startswith("⚠️ No metrics.json for run 'nope'") and "runs with results: demo" in missing


def test_several_users_at_once_are_queued_not_interleaved(served):
    client, generator, _ = served
    generator.most_active = 0
    results, errors = [], []

    def user(style: str) -> None:
        try:
            results.append(Client(client.src, verbose=False, analytics_enabled=False)
                           .predict(SHELLS, style, 0, 64, 1, api_name="/answer")[1])
        except Exception as err:  # noqa: BLE001  (collected and asserted below)
            errors.append(err)

    threads = [threading.Thread(target=user, args=(style,)) for style in ("cot", "pot", "hybrid", "cot")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and results == ["35"] * 4
    assert generator.most_active == 1  # one generation at a time: the queue held the others


@pytest.mark.slow
def test_python_app_py_serves_the_tiny_model(tiny_model_dir, tmp_path):
    """`python app.py --model M --no-adapter --port P` starts, answers over HTTP, and stops on SIGTERM."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--model", str(tiny_model_dir), "--no-adapter",
                                "--port", str(port), "--runs-dir", str(tmp_path)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = None
        deadline = time.monotonic() + 120
        while client is None and time.monotonic() < deadline and process.poll() is None:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
            except Exception:  # noqa: BLE001  (not listening yet)
                time.sleep(0.5)
        assert client is not None, f"app.py did not start: {process.stdout.read() if process.poll() is not None else ''}"
        output, answer, status, *_ = client.predict("What is 2 + 3?", "cot", 0, 16, 1, api_name="/answer")
        assert isinstance(output, str) and "1 sample in" in status
        status = client.predict("", "pot", 0, 16, 1, api_name="/answer")[2]
        assert status.startswith("⚠️ Please type a question")
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_python_app_py_refuses_a_folder_that_is_not_an_adapter(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "app.py"), "--adapter", str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    assert result.returncode == 2
    assert f"error: --adapter {tmp_path}: no adapter_config.json there (expected a PEFT adapter folder)" in result.stderr
