"""`python app.py [--model M] [--adapter DIR] [--host 127.0.0.1] [--port 7860]`: arithmo's demo in a browser.

With no arguments it serves the embedded SmolLM2-135M-Instruct, with runs/demo/adapter on top when
`make demo` has trained it. UI only: `arithmo.app.session` answers, votes and compares (with evaluation's
scoring rules), `arithmo.app.files` reads the examples and the evaluation results, and every program runs in
`arithmo.sandbox`'s sandbox. `--examples gsm8k=FILE --examples math` adds benchmark rows (a local file in
the benchmark's schema, or the hub) to the example questions.

Endpoints for `gradio_client` (`Client(url).predict(..., api_name="/answer")`):
  /answer       (question, style, temperature, max_new_tokens, k) -> (output, answer, status, program,
                execution, votes)
  /compare      (question, style, temperature, max_new_tokens) -> (base output, base answer, base status,
                adapter output, adapter answer, adapter status)
  /run_program  (program) -> sandbox output
  /results      (run) -> (overview, by level, by type, notes, chart with 95% intervals)
  /intervals    (run) -> every accuracy of the run's results with its 95% Wilson interval
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import gradio as gr
import pandas as pd

from arithmo.app.session import MAX_NEW_TOKENS_CAP, MAX_SAMPLES, MAX_TEMPERATURE, VOTE_HEADERS, DemoSession
from arithmo.app.generator import default_adapter, load_generator
from arithmo.app.files import (INTERVAL_HEADERS, LEVEL_HEADERS, OVERVIEW_HEADERS, TYPE_HEADERS, find_metrics,
                               interval_table, load_examples, load_metrics, metrics_tables, results_figure, seed_notes)
from arithmo.benchmarks import BENCHMARKS
from arithmo.runs import is_adapter

STYLE_CHOICES = [("Program of thought (PoT)", "pot"), ("Chain of thought (CoT)", "cot"),
                 ("Hybrid: program, else chain of thought", "hybrid"),
                 ("Tool-integrated: reasoning with code run as it goes (TIR)", "tir")]
REPO = Path(__file__).resolve().parent


def _table(rows: list[list], headers: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=headers)


def build_ui(session: DemoSession, *, runs_dir: str | Path = REPO / "runs", examples_note: str = "",
             model_note: str = "") -> gr.Blocks:
    """The app's page for `session`; call `.queue(...)` and `.launch(...)` on it."""
    runs_dir = Path(runs_dir)
    with gr.Blocks(title="arithmo demo") as ui:
        gr.Markdown(f"# arithmo: math reasoning demo\n{model_note}")
        with gr.Tab("Ask"):
            with gr.Row():
                with gr.Column(scale=3):
                    question = gr.Textbox(label="Question", lines=4, elem_id="question",
                                          placeholder="A math word problem or a competition problem")
                    if session.examples:
                        gr.Examples([[e.question] for e in session.examples], inputs=[question],
                                    example_labels=[e.label for e in session.examples],
                                    label=f"Examples ({examples_note})" if examples_note else "Examples")
                with gr.Column(scale=2):
                    style = gr.Radio(STYLE_CHOICES, value="pot", label="Style")
                    temperature = gr.Slider(0, MAX_TEMPERATURE, value=0, step=0.05, label="Temperature (0: greedy)")
                    max_new_tokens = gr.Slider(16, MAX_NEW_TOKENS_CAP, value=256, step=16, label="Max new tokens")
                    k = gr.Slider(1, MAX_SAMPLES, value=1, step=1,
                                  label="k samples for a majority vote (k > 1 needs temperature > 0)")
                    ask = gr.Button("Answer", variant="primary", elem_id="ask")
            with gr.Row():
                with gr.Column():
                    answer = gr.Textbox(label="Final answer", elem_id="final-answer", interactive=False)
                    status = gr.Markdown(elem_id="status")
                    output = gr.Textbox(label="Model output (streams as it is generated)", lines=10,
                                        elem_id="model-output", interactive=False)
                with gr.Column():
                    program = gr.Code(language="python", interactive=True, elem_id="program",
                                      label="Program (PoT): runs in the sandbox; edit it and run it again")
                    rerun = gr.Button("Run this program in the sandbox")
                    execution = gr.Textbox(label="Sandbox output", lines=4, elem_id="execution", interactive=False)
                    votes = gr.Dataframe(headers=VOTE_HEADERS, label="How the samples voted", interactive=False)

        with gr.Tab("Base vs adapter"):
            gr.Markdown("The same question to the base model and to base + adapter: one loaded model, the "
                        "adapter switched off for the base answer (peft `disable_adapter()`).")
            with gr.Row():
                compare_question = gr.Textbox(label="Question", lines=3, scale=3)
                with gr.Column(scale=2):
                    compare_style = gr.Radio(STYLE_CHOICES, value="pot", label="Style")
                    compare_temperature = gr.Slider(0, MAX_TEMPERATURE, value=0, step=0.05, label="Temperature")
                    compare_tokens = gr.Slider(16, MAX_NEW_TOKENS_CAP, value=256, step=16, label="Max new tokens")
                    compare_button = gr.Button("Compare", variant="primary")
            if session.examples:
                gr.Examples([[e.question] for e in session.examples], inputs=[compare_question],
                            example_labels=[e.label for e in session.examples])
            with gr.Row():
                with gr.Column():
                    base_answer = gr.Textbox(label="Base model: answer", interactive=False)
                    base_status = gr.Markdown()
                    base_output = gr.Textbox(label="Base model: output", lines=10, interactive=False)
                with gr.Column():
                    tuned_answer = gr.Textbox(label="Base + adapter: answer", interactive=False)
                    tuned_status = gr.Markdown()
                    tuned_output = gr.Textbox(label="Base + adapter: output", lines=10, interactive=False)

        with gr.Tab("Evaluation results"):
            runs = list(find_metrics(runs_dir))
            with gr.Row():
                run = gr.Dropdown(runs, value=runs[0] if runs else None, label=f"Run (metrics.json under {runs_dir})",
                                  allow_custom_value=True)
                refresh = gr.Button("Refresh")
            notes = gr.Markdown()
            overview = gr.Dataframe(headers=OVERVIEW_HEADERS, label="Accuracy by benchmark", interactive=False)
            chart = gr.Plot(label="Accuracy (%) with 95% Wilson intervals: overall, by level, by type")
            with gr.Row():
                by_level = gr.Dataframe(headers=LEVEL_HEADERS, label="By level", interactive=False)
                by_type = gr.Dataframe(headers=TYPE_HEADERS, label="By type", interactive=False)
            intervals = gr.Dataframe(headers=INTERVAL_HEADERS, interactive=False,
                                     label="Every accuracy with its 95% interval (Wilson score)")

        # handlers: turn the session's views into component values -------------------------------
        def ask_fn(question_text, style_name, temp, tokens, samples):
            for view in session.answer(question_text, style_name, temp, tokens, samples):
                yield (view.completion, view.answer, view.status, view.program, view.execution,
                       _table(view.votes, VOTE_HEADERS))

        def compare_fn(question_text, style_name, temp, tokens):
            for base, tuned in session.compare(question_text, style_name, temp, tokens):
                yield base.completion, base.answer, base.status, tuned.completion, tuned.answer, tuned.status

        def results_fn(run_name):
            found = find_metrics(runs_dir)
            if not run_name:
                return (_table([], OVERVIEW_HEADERS), _table([], LEVEL_HEADERS), _table([], TYPE_HEADERS),
                        f"No evaluation results under {runs_dir} yet: `python -m arithmo.eval ...` writes them.", None)
            if run_name not in found:
                known = ", ".join(found) or "none"
                return (_table([], OVERVIEW_HEADERS), _table([], LEVEL_HEADERS), _table([], TYPE_HEADERS),
                        f"⚠️ No metrics.json for run {run_name!r} under {runs_dir} (runs with results: {known}).", None)
            results, problems = load_metrics(found[run_name])
            rows, levels, types = metrics_tables(results)
            text = f"{len(results)} result file(s) for {run_name}."
            if problems:
                text += f" {len(problems)} file(s) skipped:\n" + "\n".join(f"- {p}" for p in problems)
            spreads = seed_notes(results)
            if spreads:
                text += "\n\nmaj@k over sampling seeds:\n" + "\n".join(f"- {line}" for line in spreads)
            return (_table(rows, OVERVIEW_HEADERS), _table(levels, LEVEL_HEADERS), _table(types, TYPE_HEADERS), text,
                    results_figure(results))

        def intervals_fn(run_name):
            found = find_metrics(runs_dir)
            results = load_metrics(found[run_name])[0] if run_name in found else []  # problems: in results_fn's notes
            return _table(interval_table(results), INTERVAL_HEADERS)

        def refresh_fn():
            names = list(find_metrics(runs_dir))
            return gr.Dropdown(choices=names, value=names[0] if names else None)

        # One model: generation requests share one queue slot (concurrency_id) and wait their turn.
        limit = int(session.max_request_s + 30)
        gr.on([ask.click, question.submit], ask_fn, [question, style, temperature, max_new_tokens, k],
              [output, answer, status, program, execution, votes], api_name="answer", concurrency_id="model",
              time_limit=limit)
        compare_button.click(compare_fn, [compare_question, compare_style, compare_temperature, compare_tokens],
                             [base_output, base_answer, base_status, tuned_output, tuned_answer, tuned_status],
                             api_name="compare", concurrency_id="model", time_limit=limit)
        rerun.click(session.run_user_program, [program], [execution], api_name="run_program",
                    concurrency_id="sandbox")
        run.change(results_fn, [run], [overview, by_level, by_type, notes, chart], api_name="results")
        run.change(intervals_fn, [run], [intervals], api_name="intervals")
        refresh.click(refresh_fn, None, [run], api_name="list_runs")
        ui.load(results_fn, [run], [overview, by_level, by_type, notes, chart], api_visibility="private")
        ui.load(intervals_fn, [run], [intervals], api_visibility="private")
    return ui


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python app.py", description="arithmo's math demo in a browser (Gradio).")
    parser.add_argument("--model", help="hub id, local folder, .gguf file or alias (default: the adapter's run's "
                                        "model, else smollm2-135m-instruct)")
    parser.add_argument("--adapter", help="PEFT adapter folder (default: runs/demo/adapter when it exists)")
    parser.add_argument("--no-adapter", action="store_true", help="serve the model alone")
    parser.add_argument("--template", default="auto", choices=["auto", "plain", "chat"],
                        help="prompt template (auto: the adapter's run's, else chat when the tokenizer has one)")
    parser.add_argument("--engine", default="auto", choices=["auto", "unsloth", "kernels", "hf"])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--runs-dir", default=str(REPO / "runs"), help="where the results panel looks")
    parser.add_argument("--max-time-s", type=float, default=60.0, help="time cap of one generation")
    parser.add_argument("--max-request-s", type=float, default=300.0, help="time cap of one request (k samples)")
    parser.add_argument("--examples", action="append", default=[], metavar="BENCHMARK[=FILE]",
                        help=f"add example questions from a benchmark ({', '.join(BENCHMARKS)}): a local file in its "
                             "schema, or the hub without =FILE; repeat for several")
    return parser.parse_args(argv)


def example_sources(specs: list[str]) -> dict[str, str | None]:
    """`["gsm8k=test.jsonl", "math"]` -> {"gsm8k": "test.jsonl", "math": None}; ValueError naming a bad one."""
    sources: dict[str, str | None] = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if name not in BENCHMARKS:
            raise ValueError(f"--examples {spec}: unknown benchmark {name!r}; expected one of {', '.join(BENCHMARKS)}")
        sources[name] = path or None
    return sources


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline by design: no calls home
    adapter = None if args.no_adapter else (args.adapter or default_adapter(args.runs_dir))
    if adapter is not None and not is_adapter(adapter):
        print(f"error: --adapter {adapter}: no adapter_config.json there (expected a PEFT adapter folder)",
              file=sys.stderr)
        return 2
    try:
        examples, examples_note = load_examples(example_sources(args.examples))
    except ValueError as err:  # an unknown benchmark, or a file that is not in its schema (DataError)
        print(f"error: {err}", file=sys.stderr)
        return 2
    generator = load_generator(args.model, adapter, template=args.template, engine=args.engine)
    session = DemoSession(generator, examples=examples, max_time_s=args.max_time_s,
                          max_request_s=args.max_request_s)
    note = f"Model: **{generator.description}**" + ("" if adapter else " (no adapter: the Base vs adapter tab is idle)")
    print(f"[app] {generator.description}; examples: {examples_note}", flush=True)
    ui = build_ui(session, runs_dir=args.runs_dir, examples_note=examples_note, model_note=note)
    ui.queue(default_concurrency_limit=1)
    try:
        ui.launch(server_name=args.host, server_port=args.port, show_error=True)
    finally:
        session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
