"""The demo's logic without a browser: input checks, styles, sandboxed programs, votes, comparison, files."""

import json
import uuid
from pathlib import Path

import pytest
from _demo_fakes import ScriptedGenerator, by_style, import_app
from _shared import shared_file

from arithmo.app.files import (FALLBACK_EXAMPLES, Example, find_metrics, interval_table, load_examples, load_metrics,
                               metrics_tables, results_figure, seed_notes)
from arithmo.app.generator import ModelGenerator, load_generator
from arithmo.app.session import (MAX_NEW_TOKENS_CAP, MAX_SAMPLES, DemoInputError, DemoSession, check_question,
                                 check_settings, vote_table)
from arithmo.evaluation.scoring import majority_vote, pool_answers


def last(views):
    """The final view of a request (they are the same object, updated; keep the last state)."""
    items = list(views)
    return items[-1]


@pytest.fixture
def session_for():
    sessions = []

    def make(reply, **kwargs):
        generator_args = {key: kwargs.pop(key) for key in ("has_adapter", "delay_s") if key in kwargs}
        session = DemoSession(ScriptedGenerator(reply, **generator_args), **kwargs)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


# ---------------------------------------------------------------------------------------------- input


def test_check_question_strips_and_refuses_empty_or_long_input():
    assert check_question("  What is 2 + 2?\n") == "What is 2 + 2?"
    for empty in ("", "   \n\t", None, 42):
        with pytest.raises(DemoInputError, match="question box is empty"):
            check_question(empty)
    with pytest.raises(DemoInputError, match=r"5,001 characters long; the limit is 5,000"):
        check_question("x" * 5001, max_chars=5000)
    assert check_question("x" * 5000, max_chars=5000) == "x" * 5000


@pytest.mark.parametrize("style, temperature, tokens, k, message", [
    ("poem", 0.0, 64, 1, "style: expected one of cot, pot, hybrid, tir, got 'poem'"),
    ("cot", -0.1, 64, 1, "temperature: expected 0 to 2.0"),
    ("cot", 2.5, 64, 1, "temperature: expected 0 to 2.0"),
    ("cot", 0.0, 0, 1, f"max new tokens: expected a whole number from 1 to {MAX_NEW_TOKENS_CAP}"),
    ("cot", 0.0, MAX_NEW_TOKENS_CAP + 1, 1, "max new tokens"),
    ("cot", 0.0, 64.5, 1, "max new tokens"),
    ("cot", 0.7, 64, MAX_SAMPLES + 1, f"from 1 to {MAX_SAMPLES}"),
    ("cot", 0.7, 64, 2.5, "k \\(samples for the vote\\)"),
    ("cot", 0.0, 64, 3, "k=3 samples need a temperature above 0"),
    ("cot", "hot", 64, 1, "temperature: expected a number, got 'hot'"),
    ("cot", 0.0, None, 1, "max new tokens: expected a number, got None"),
    ("cot", float("nan"), 64, 1, "temperature: expected a number, got nan"),
])
def test_check_settings_names_the_bad_setting(style, temperature, tokens, k, message):
    with pytest.raises(DemoInputError, match=message):
        check_settings(style, temperature, tokens, k)


def test_bad_input_yields_one_message_and_generates_nothing(session_for):
    session = session_for("The answer is: 1")
    views = list(session.answer("   ", "cot", 0.0, 64, 1))
    assert len(views) == 1 and views[0].status.startswith("⚠️ Please type a question")
    assert views[0].answer == "" and session.generator.calls == []
    view = last(session.answer("2 + 2?", "cot", 0.0, 64, 4))
    assert "k=4 samples need a temperature above 0" in view.status and session.generator.calls == []


# ---------------------------------------------------------------------------------------------- styles


def test_cot_streams_growing_text_then_reads_the_answer_line(session_for):
    reply = "Sam has 3 + 4 = 7 apples.\nThe answer is: 7"
    session = session_for(reply)
    completions = [view.completion for view in session.answer("Sam has 3 apples and gets 4. How many?", "cot", 0, 64)]
    distinct = [text for index, text in enumerate(completions) if index == 0 or text != completions[index - 1]]
    assert distinct == [reply[:end] for end in range(4, len(reply) + 4, 4)]  # one view per streamed chunk
    assert completions[-1] == reply
    view = last(session.answer("Sam has 3 apples and gets 4. How many?", "cot", 0, 64))
    assert view.answer == "7" and view.program == "" and view.execution == ""
    assert view.status.startswith("Answer from the answer line.")
    call = session.generator.calls[-1]
    assert call["prompt"] == "Question: Sam has 3 apples and gets 4. How many?\n\nAnswer:"
    assert call["max_new_tokens"] == 64 and call["temperature"] == 0.0 and call["use_adapter"] is True


def test_cot_without_an_answer_line_shows_the_flexible_number_and_says_it_would_be_wrong(session_for):
    view = last(session_for("She has 12 apples left").answer("How many?", "cot", 0, 64))
    assert view.answer == "12"
    assert "no answer line: the evaluation would count it wrong" in view.status


def test_pot_runs_the_program_in_the_sandbox_and_shows_its_output(session_for):
    program = "boxes = 17\nper_box = 3\nprint(boxes * per_box)"
    session = session_for(f"Here is a program:\n```python\n{program}\n```")
    view = last(session.answer("17 boxes of 3. How many?", "pot", 0, 128))
    assert view.program == program
    assert view.execution == "51\n"
    assert view.answer == "51" and "Answer from the program's output." in view.status
    assert session.generator.calls[0]["prompt"].endswith("Write a Python program to solve this.\n\nAnswer:")


def test_a_malicious_program_is_contained_and_reported(session_for):
    target = Path("/tmp") / f"arithmo-pwned-{uuid.uuid4().hex}"
    session = session_for(f'```python\nimport os\nos.system("touch {target}")\nprint(1)\n```')
    view = last(session.answer("Do something", "pot", 0, 64))
    assert not target.exists()
    assert view.execution == "error: PermissionError: sandbox refused os.system (running a shell)"
    assert view.answer == "" and "No answer: the program gave no answer." in view.status


def test_a_program_that_never_ends_times_out(session_for):
    session = session_for("```python\nwhile True:\n    pass\n```", program_timeout_s=1.0)
    view = last(session.answer("Loop", "pot", 0, 64))
    assert view.execution == "timed out after 1 s"
    assert view.answer == ""


def test_hybrid_falls_back_to_chain_of_thought_when_the_program_fails(session_for):
    session = session_for(by_style(cot="10 / 4 = 2.5\nThe answer is: 2.5", pot="```python\nprint(10 / 0)\n```"))
    view = last(session.answer("Split 10 in 4", "hybrid", 0, 64))
    assert view.execution == "error: ZeroDivisionError: division by zero"
    assert "falling back to chain of thought" in view.completion and view.completion.endswith("The answer is: 2.5")
    assert view.answer == "2.5" and "(chain-of-thought fallback)" in view.status
    assert [("Write a Python program" in c["prompt"]) for c in session.generator.calls] == [True, False]


def test_hybrid_keeps_the_program_answer_when_it_works(session_for):
    session = session_for(by_style(cot="The answer is: 1", pot="print(2 + 2)"))
    view = last(session.answer("2 + 2", "hybrid", 0, 64))
    assert view.answer == "4" and len(session.generator.calls) == 1


# ---------------------------------------------------------------------------------------------- votes


def test_majority_vote_pools_equivalent_answers_and_counts_every_sample(session_for):
    replies = {0: "The answer is: 0.5", 1: "The answer is: 3", 2: "The answer is: \\frac{1}{2}", 3: "no idea"}
    session = session_for(lambda prompt, use_adapter, seed: replies[seed])
    view = last(session.answer("Half of one?", "cot", 0.8, 64, k=4, seed=0))
    assert view.votes == [["0.5", 2, "50%", "1, 3"], ["3", 1, "25%", "2"], ["(no answer)", 1, "25%", "4"]]
    assert view.answer == "0.5" and "Majority vote: 0.5 with 2 of 4 samples." in view.status
    assert [call["seed"] for call in session.generator.calls] == [0, 1, 2, 3]
    assert all(call["temperature"] == 0.8 for call in session.generator.calls)
    assert view.completion.startswith("── sample 1/4 ──\nThe answer is: 0.5\n\n── sample 2/4 ──")


def test_the_vote_shows_the_program_of_a_sample_that_voted_for_the_winner(session_for):
    programs = {0: "print(5)", 1: "print(7)", 2: "print(3 + 4)"}
    session = session_for(lambda prompt, use_adapter, seed: programs[seed])
    view = last(session.answer("?", "pot", 1.0, 64, k=3))
    assert view.answer == "7" and view.program == "print(7)" and view.execution == "7\n"
    assert view.votes == [["7", 2, "67%", "2, 3"], ["5", 1, "33%", "1"]]


@pytest.mark.parametrize("answers", [
    ["1", "2", "2", "1"], ["3", None, "3.0", "x"], [None, None], ["\\frac{1}{2}", "0.5", "1/2", "2"], ["a", "b", "c"],
])
def test_the_top_of_the_vote_table_is_majority_votes_choice(answers):
    pooled = pool_answers(answers)
    assert (pooled[0][0] if pooled else None) == majority_vote(answers)
    rows = vote_table(answers)
    assert sum(row[1] for row in rows) == len(answers)


# ---------------------------------------------------------------------------------------------- caps and references


def test_each_generation_gets_the_time_cap_and_the_request_stops_at_its_own(session_for):
    session = session_for("The answer is: 1", delay_s=1.2, max_time_s=30.0, max_request_s=2.0)
    view = last(session.answer("?", "cot", 0.5, 64, k=3))
    assert len(session.generator.calls) == 1
    assert session.generator.calls[0]["max_time_s"] == pytest.approx(2.0, abs=0.05)  # min(30, time left)
    assert "the request reached its time limit (2 s) after 1 of 3 samples" in view.status
    assert view.votes == [["1", 1, "100%", "1"]]


def test_an_example_question_is_checked_against_its_reference_answer(session_for):
    example = Example("What is 6 times 7?", "42", "arithmo test")
    right = last(session_for("The answer is: 42.0", examples=[example]).answer(" What is 6 times 7? ", "cot", 0, 64))
    assert "Reference answer (arithmo test): 42; the model's answer matches ✓." in right.status
    wrong = last(session_for("The answer is: 41", examples=[example]).answer("What is 6 times 7?", "cot", 0, 64))
    assert "the model's answer does not match ✗" in wrong.status


def test_user_programs_run_only_in_the_sandbox(session_for):
    session = session_for("unused")
    assert session.run_user_program("   ").startswith("⚠️ The program box is empty")
    assert session.run_user_program("print(sum(range(10)))") == "45\n\n\nprinted answer: 45"
    target = Path("/tmp") / f"arithmo-pwned-{uuid.uuid4().hex}"
    shown = session.run_user_program(f"open({str(target)!r}, 'w').write('x')")
    # the jail's /tmp is a private tmpfs (bubblewrap), or the write is refused (the fallback layers): either
    # way nothing reaches the host's /tmp
    assert not target.exists(), shown
    assert shown.startswith("error: PermissionError: sandbox refused") or "printed answer: 1" in shown


# ---------------------------------------------------------------------------------------------- base vs adapter


def test_compare_asks_the_base_then_the_adapter(session_for):
    session = session_for(by_style(cot="The answer is: 8", pot="print(8)", base_cot="The answer is: 5"))
    pairs = list(session.compare("3 + 5?", "cot", 0, 64))
    base, tuned = pairs[-1]
    assert (base.answer, tuned.answer) == ("5", "8")
    assert [call["use_adapter"] for call in session.generator.calls] == [False, True]


def test_compare_without_an_adapter_says_so(session_for):
    session = session_for("The answer is: 1", has_adapter=False)
    [(base, tuned)] = list(session.compare("?", "cot", 0, 64))
    assert "No adapter is loaded" in base.status and base.status == tuned.status
    assert session.generator.calls == []


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    """A run folder with a LoRA adapter (random non-zero B, so it changes the output) on the tiny model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(run / "adapter")
    (run / "config.yaml").write_text(f"model:\n  name: {tiny_model_dir}\n  template: chat\n")
    return run


def _stream_text(generator, use_adapter=True):
    return last(generator.stream("<|im_start|>user\nQuestion?<|im_end|>\n<|im_start|>assistant\n", max_new_tokens=10,
                                 temperature=0.0, seed=0, max_time_s=30, use_adapter=use_adapter))


def test_disable_adapter_gives_the_base_models_answer_from_the_same_weights(tiny_model_dir, tiny_run):
    plain = load_generator(str(tiny_model_dir))
    assert not plain.has_adapter
    with pytest.raises(ValueError, match="no adapter is loaded"):
        _stream_text(plain, use_adapter=False)
    tuned = load_generator(None, tiny_run / "adapter")  # the model comes from the run's config.yaml
    assert tuned.has_adapter and tuned.template == "chat"
    base_text = _stream_text(plain)
    assert base_text  # the random model says something in 10 tokens
    assert _stream_text(tuned, use_adapter=False) == base_text
    assert _stream_text(tuned) != base_text
    assert _stream_text(tuned, use_adapter=False) == base_text  # the adapter is back on after the context


def test_model_generator_streams_through_the_session(tiny_model_dir):
    from arithmo.prompts import render_eval

    generator = load_generator(str(tiny_model_dir))
    assert isinstance(generator, ModelGenerator) and generator.stop == []  # chat template: eos ends the turn
    session = DemoSession(generator)
    views = [view.completion for view in session.answer("What is 2 + 3?", "cot", 0.0, 12)]
    session.close()
    assert len(views) >= 2 and views[-1] == views[-2]  # streamed pieces, then the final view
    prompt = render_eval("What is 2 + 3?", "cot", generator.tokenizer, "auto")
    assert prompt.startswith("<|im_start|>user\nWhat is 2 + 3?")
    direct = last(generator.stream(prompt, max_new_tokens=12, temperature=0.0, seed=0, max_time_s=30))
    assert views[-1] == direct


# ---------------------------------------------------------------------------------------------- files


def test_examples_come_from_the_real_rows():
    gsm8k, math = shared_file("gsm8k/test_first300.jsonl"), shared_file("math/test_dev500.jsonl")
    examples, where = load_examples({"gsm8k": gsm8k, "math": math})
    assert where.startswith("benchmark rows: gsm8k")
    labels = [example.label for example in examples]
    assert labels[:3] == ["tiny held-out #1", "tiny held-out #2", "GSM8K test #1"]
    janet = examples[2]
    assert janet.question.startswith("Janet’s ducks lay 16 eggs per day.") and janet.answer == "18"
    math_examples = [example for example in examples if example.label.startswith("MATH")]
    assert len(math_examples) == 4 and len({example.label.split(",")[0] for example in math_examples}) == 4
    assert math_examples[0].label == "MATH Algebra, Level 3" and math_examples[0].answer == "2"


def test_examples_fall_back_to_our_own_and_bad_rows_name_file_line_and_key(tmp_path):
    examples, where = load_examples()
    assert examples[-4:] == list(FALLBACK_EXAMPLES) and "--examples" in where
    bad = tmp_path / "gsm8k.jsonl"
    bad.write_text('{"question": "Q?", "answer": "#### 3"}\n{"question": "Q2"}\n')
    with pytest.raises(ValueError, match=r"gsm8k.jsonl:2: gsm8k row has no 'answer' or 'response' field "
                                         r"\(fields present: question\)"):
        load_examples({"gsm8k": bad})


def test_app_examples_option_names_a_benchmark_and_a_file():
    app = import_app()
    assert app.example_sources(["gsm8k=a.jsonl", "math"]) == {"gsm8k": "a.jsonl", "math": None}
    with pytest.raises(ValueError, match="--examples gms8k=a.jsonl: unknown benchmark 'gms8k'"):
        app.example_sources(["gms8k=a.jsonl"])


def _write_metrics(path: Path, **values) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {"benchmark": "gsm8k", "style": "cot", "n": 4, "accuracy": 0.5, "accuracy_flexible": 0.75,
               "maj_k": None, "no_answer_rate": 0.25, "exec_error_rate": None, "exec_timeout_rate": None,
               "by_level": {}, "by_type": {}, "model": "m", "adapter": None, **values}
    path.write_text(json.dumps(metrics))
    return path


def test_metrics_files_are_found_tabulated_and_bad_ones_reported(tmp_path):
    runs = tmp_path / "runs"
    good = _write_metrics(runs / "demo" / "eval" / "gsm8k_cot" / "metrics.json")
    _write_metrics(runs / "demo" / "eval" / "math_pot" / "metrics.json", benchmark="math", style="pot", n=3,
                   accuracy=1 / 3, maj_k={"k": 4, "accuracy": 2 / 3}, exec_error_rate=0.0, exec_timeout_rate=1 / 3,
                   by_level={"Level 1": {"n": 2, "correct": 1, "accuracy": 0.5}},
                   by_type={"Algebra": {"n": 3, "correct": 1, "accuracy": 1 / 3}})
    (runs / "demo" / "eval" / "broken").mkdir()
    (runs / "demo" / "eval" / "broken" / "metrics.json").write_text("{not json")
    _write_metrics(runs / "demo" / "eval" / "odd" / "metrics.json", accuracy=1.5)
    (runs / "demo" / "eval" / "partial").mkdir()
    (runs / "demo" / "eval" / "partial" / "metrics.json").write_text('{"benchmark": "gsm8k"}')
    _write_metrics(runs / "eval" / "smollm2" / "gsm8k_cot" / "metrics.json", accuracy=0.25)
    found = find_metrics(runs)
    assert list(found) == ["demo", "eval/smollm2"] and len(found["demo"]) == 5
    results, problems = load_metrics(found["demo"])
    assert [m["_eval"] for m in results] == ["demo/gsm8k_cot", "demo/math_pot"]
    assert len(problems) == 3
    assert problems[0].startswith(f"{runs}/demo/eval/broken/metrics.json: cannot be read as JSON")
    assert "'accuracy' should be a number from 0 to 1, got 1.5" in problems[1]
    assert "no 'style', 'n', 'accuracy' (expected an arithmo metrics.json" in problems[2]
    overview, levels, types = metrics_tables(results)
    assert overview == [["demo/gsm8k_cot", "gsm8k", "cot", 4, 50.0, 75.0, None, 25.0, None, None, "m", ""],
                        ["demo/math_pot", "math", "pot", 3, 33.3, 75.0, 66.7, 25.0, 0.0, 33.3, "m", ""]]
    assert levels == [["demo/math_pot", "Level 1", 2, 1, 50.0]]
    assert types == [["demo/math_pot", "Algebra", 3, 1, 33.3]]
    # every accuracy with its 95% Wilson interval (computed from n: these files predate metrics.json's ci95)
    assert interval_table(results) == [
        ["demo/gsm8k_cot", "strict", "all", 4, 50.0, 15.0, 85.0],
        ["demo/gsm8k_cot", "flexible", "all", 4, 75.0, 30.1, 95.4],
        ["demo/math_pot", "strict", "all", 3, 33.3, 6.1, 79.2],
        ["demo/math_pot", "flexible", "all", 3, 75.0, 25.6, 96.3],
        ["demo/math_pot", "maj@4", "all", 3, 66.7, 20.8, 93.9],
        ["demo/math_pot", "strict, by level", "Level 1", 2, 50.0, 9.5, 90.5],
        ["demo/math_pot", "strict, by type", "Algebra", 3, 33.3, 6.1, 79.2]]
    assert results_figure(results) is not None and results_figure([]) is None
    assert seed_notes(results) == []
    spread = {"seeds": [0, 1], "k": 4, "mean": 0.55, "std": 0.07, "min": 0.5, "max": 0.6}
    assert seed_notes([{"_eval": "demo/math_pot_maj4", "maj_k_seeds": spread}]) == [
        "demo/math_pot_maj4: maj@4 over 2 seeds (0, 1): mean 55.0%, std 7.0p, min 50.0%, max 60.0%"]
    assert load_metrics(found["eval/smollm2"])[0][0]["_eval"] == "smollm2/gsm8k_cot"
    assert find_metrics(tmp_path / "absent") == {} and good.is_file()


@pytest.mark.gpu
def test_on_a_gpu_the_4bit_model_compares_base_and_adapter(tmp_path):
    """CUDA: the app's path for a real QLoRA adapter (4-bit base, PEFT adapter, disable_adapter for the base)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from _shared import make_tiny_model

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    base_dir = tmp_path / "base"
    # hidden 256: bitsandbytes quantizes in blocks of 64, and a wider model keeps 4-bit rounding from
    # making base and adapter agree by accident
    make_tiny_model(base_dir, layers=4, hidden=256, dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.bfloat16)
    lora = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(tmp_path / "run" / "adapter")
    (tmp_path / "run" / "config.yaml").write_text(f"model:\n  name: {base_dir}\n  template: chat\n")

    tuned = load_generator(None, tmp_path / "run" / "adapter", engine="hf")
    plain = load_generator(str(base_dir), engine="hf")
    assert tuned.model.device.type == "cuda" and tuned.has_adapter
    assert getattr(tuned.model.config, "quantization_config", None) is not None  # 4-bit on CUDA by default
    base_text = _stream_text(plain)
    assert base_text and _stream_text(tuned, use_adapter=False) == base_text
    assert _stream_text(tuned) != base_text
    session = DemoSession(tuned)
    base, adapted = list(session.compare("What is 2 + 3?", "cot", 0.0, 16))[-1]
    session.close()
    assert base.completion != adapted.completion and "1 sample in" in adapted.status


def test_an_over_long_program_is_refused_before_it_runs(session_for):
    from arithmo.app.session import MAX_PROGRAM_CHARS

    session = session_for("unused")
    shown = session.run_user_program("print(1)\n" + "#" * MAX_PROGRAM_CHARS)
    assert shown == f"⚠️ The program is {MAX_PROGRAM_CHARS + 9:,} characters long; the limit is {MAX_PROGRAM_CHARS:,}."
    assert session._sandbox is None  # nothing was started, let alone run
