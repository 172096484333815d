"""The Gradio app's logic (`app.py` at the repository root is only its UI).

- `arithmo.app.session`: `DemoSession` answers a question in a style (CoT, PoT, hybrid), votes over k samples
  and compares base and adapter; it scores with evaluation's rules (`arithmo.evaluation.scoring`), so the app
  and `python -m arithmo.eval` give the same verdict on the same completion.
- `arithmo.app.generator`: a loaded model (and adapter) as a stream of growing text.
- `arithmo.app.files`: example questions (through `arithmo.benchmarks`) and evaluation results (through
  `arithmo.runs`) read from disk.
"""
