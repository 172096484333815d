"""The Gradio demo's logic (`app.py` is only its UI): answer a question in a style, vote, compare, show results.

    generator = load_generator("smollm2-135m-instruct", adapter="runs/demo/adapter")   # arithmo.app.generator
    session = DemoSession(generator, examples=load_examples()[0])                     # arithmo.app.files
    for view in session.answer("What is 12 + 30?", "pot", temperature=0.0, max_new_tokens=128, k=1):
        print(view.completion)          # grows as tokens arrive; view.answer, view.program, view.execution at the end

- A *generator* turns a prompt into a stream of growing text. `arithmo.app.generator.ModelGenerator` wraps a
  loaded model (`arithmo.generate.stream_generate`); tests inject a stand-in with the same three members
  (`tokenizer`, `template`, `has_adapter`) and `stream(...)`.
- Styles and scoring are the evaluation's own functions (`arithmo.evaluation.scoring`: `read_cot`,
  `program_answer`, `needs_cot_fallback`, `pool_answers`, `grade_answer`): `cot` reads the answer line, `pot`
  runs the program, `hybrid` runs the program and falls back to chain of thought when it gives no answer; a
  vote pools equivalent answers as maj@k does. The app and `python -m arithmo.eval` cannot disagree.
- Model-written programs, and programs a user edits in the app, run ONLY in `arithmo.sandbox`'s
  sandbox; nothing here calls `exec`.
- Examples (real GSM8K/MATH rows) and evaluation results (`runs/**/eval/*/metrics.json`) are read from
  disk by `arithmo.app.files`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from arithmo.app.files import Example
from arithmo.app.generator import TextGenerator
from arithmo.evaluation.scoring import grade_answer, needs_cot_fallback, pool_answers, program_answer, read_cot
from arithmo.prompts import POT_HINTS, render_eval

STYLES = ("cot", "pot", "hybrid", "tir")
MAX_TOOL_CALLS = 4  # tir: code blocks run per answer, as the evaluation presets allow
# GSM8K's longest question in 800 real rows is 755 characters, MATH's (500 test rows) 1,582 (docs/measurements.md):
# 4,000 leaves room for a pasted problem with its context and still stops a pasted book.
MAX_QUESTION_CHARS = 4000
# A program edited in the app: a 1,024-token answer holds ~4,000 characters of code; 4x that for a pasted one.
MAX_PROGRAM_CHARS = 16_000
MAX_NEW_TOKENS_CAP = 1024  # the GSM8K presets evaluate with 512; twice that is the most one answer may take here
# Each sample is a full generation: at the default 60 s cap per generation, 16 samples already reach past the
# default 300 s request cap, so more would only be cut off.
MAX_SAMPLES = 16
MAX_TEMPERATURE = 2.0  # as OpenAI-style APIs cap it; past ~1.5 a small model samples near-random tokens


class DemoInputError(ValueError):
    """What a user typed or chose cannot be answered; the message says what to change."""


# ----------------------------------------------------------------------------------------------
# input checks


def check_question(question: Any, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """The question stripped of surrounding space, or DemoInputError saying why it cannot be asked."""
    if not isinstance(question, str) or not question.strip():
        raise DemoInputError("Please type a question: the question box is empty.")
    question = question.strip()
    if len(question) > max_chars:
        raise DemoInputError(f"The question is {len(question):,} characters long; the limit is {max_chars:,}. "
                             "Shorten it to the problem itself.")
    return question


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # value != value: NaN
        raise DemoInputError(f"{name}: expected a number, got {value!r}")
    return float(value)


def check_settings(style: str, temperature: float, max_new_tokens: int, k: int) -> None:
    """DemoInputError naming the setting that is out of range."""
    if style not in STYLES:
        raise DemoInputError(f"style: expected one of {', '.join(STYLES)}, got {style!r}")
    temperature = _number(temperature, "temperature")
    max_new_tokens = _number(max_new_tokens, "max new tokens")
    k = _number(k, "k (samples for the vote)")
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise DemoInputError(f"temperature: expected 0 to {MAX_TEMPERATURE}, got {temperature}")
    if int(max_new_tokens) != max_new_tokens or not 1 <= max_new_tokens <= MAX_NEW_TOKENS_CAP:
        raise DemoInputError(f"max new tokens: expected a whole number from 1 to {MAX_NEW_TOKENS_CAP}, "
                             f"got {max_new_tokens}")
    if int(k) != k or not 1 <= k <= MAX_SAMPLES:
        raise DemoInputError(f"k (samples for the vote): expected a whole number from 1 to {MAX_SAMPLES}, got {k}")
    if k > 1 and temperature == 0:
        raise DemoInputError(f"k={int(k)} samples need a temperature above 0: greedy decoding gives the same "
                             "answer every time, so the vote would be one answer k times.")


# ----------------------------------------------------------------------------------------------
# answers


@dataclass
class Sample:
    """One completion and what came of it."""

    text: str = ""
    program: str | None = None
    execution: str = ""  # what the sandbox reported, as shown
    answer: str | None = None  # strict: what the evaluation grades (and what votes)
    shown_answer: str | None = None  # the answer shown: strict, else the flexible last-number fallback
    source: str = ""  # where the answer came from


@dataclass
class AnswerView:
    """Everything the app shows for one request; yielded again each time something changes."""

    completion: str = ""
    answer: str = ""
    program: str = ""
    execution: str = ""
    votes: list[list[Any]] = field(default_factory=list)  # rows of VOTE_HEADERS
    status: str = ""
    graded_answer: str | None = None  # what evaluation grades: the strict answer, or maj@k's vote
    correct: bool | None = None  # evaluation's verdict against the example's reference (None: no reference)


VOTE_HEADERS = ["answer", "votes", "share", "samples"]


def describe_execution(result: Any) -> str:
    """An ExecResult as the text the app shows."""
    if result.timed_out:  # the sandbox's error says it: "timed out after 5 s"
        return (result.error or "timed out") + (f"\noutput before the time limit:\n{result.stdout}".rstrip()
                                                if result.stdout else "")
    if result.error:
        return f"error: {result.error}" + (f"\noutput before the error:\n{result.stdout}".rstrip() if result.stdout else "")
    return result.stdout if result.stdout.strip() else "(the program printed nothing)"


def vote_table(answers: list[str | None], grade_timeout_s: float = 2.0) -> list[list[Any]]:
    """Rows of VOTE_HEADERS ([answer, votes, share, samples]) for evaluation's `pool_answers` (its first row is
    maj@k's choice), and one last row for the samples without an answer: every sample is counted somewhere."""
    total = len(answers)
    rows: list[list[Any]] = [[answer, len(numbers), f"{len(numbers) / total:.0%}", ", ".join(map(str, numbers))]
                             for answer, numbers in pool_answers(answers, grade_timeout_s=grade_timeout_s)]
    missing = [number for number, answer in enumerate(answers, 1) if answer is None]
    if missing:
        rows.append(["(no answer)", len(missing), f"{len(missing) / total:.0%}", ", ".join(map(str, missing))])
    return rows


class _OutOfTime(Exception):
    """The request's overall time cap ran out before the next generation could start."""


class DemoSession:
    """Answers questions with one generator; owns a sandbox for the programs. Thread-safe for the app.

    max_time_s caps one generation; max_request_s caps a whole request (k samples, a hybrid fallback, both
    sides of a comparison); program_timeout_s caps one program in the sandbox.
    """

    def __init__(self, generator: TextGenerator, *, examples: list[Example] | tuple[Example, ...] = (),
                 max_question_chars: int = MAX_QUESTION_CHARS, max_time_s: float = 60.0,
                 max_request_s: float = 300.0, program_timeout_s: float = 5.0, pot_hint: str = POT_HINTS[0],
                 sandbox: Any = None):
        for key, value in (("max_time_s", max_time_s), ("max_request_s", max_request_s),
                           ("program_timeout_s", program_timeout_s), ("max_question_chars", max_question_chars)):
            if not value > 0:
                raise ValueError(f"{key}: expected a positive number, got {value}")
        self.generator = generator
        self.examples = list(examples)
        self.references = {example.question.strip(): example for example in self.examples}
        self.max_question_chars, self.max_time_s, self.max_request_s = max_question_chars, max_time_s, max_request_s
        self.program_timeout_s, self.pot_hint = program_timeout_s, pot_hint
        self._sandbox, self._owns_sandbox = sandbox, sandbox is None
        self._sandbox_lock = threading.Lock()

    # programs ------------------------------------------------------------------------------------

    def run_program(self, code: str) -> Any:
        """Run one program in the sandbox (started on first use) and return its ExecResult."""
        with self._sandbox_lock:
            if self._sandbox is None:
                from arithmo.sandbox import Sandbox

                self._sandbox = Sandbox(workers=1)
        return self._sandbox.run([code], timeout_s=self.program_timeout_s)[0]

    def run_user_program(self, code: Any) -> str:
        """A program typed or edited in the app, run in the sandbox like a model's: what it did, as text."""
        if not isinstance(code, str) or not code.strip():
            return "⚠️ The program box is empty: answer a question in the PoT or hybrid style, or type a program."
        if len(code) > MAX_PROGRAM_CHARS:
            return f"⚠️ The program is {len(code):,} characters long; the limit is {MAX_PROGRAM_CHARS:,}."
        result = self.run_program(code)
        shown = describe_execution(result)
        answer = program_answer(result)
        return shown + (f"\n\nprinted answer: {answer}" if answer is not None else "")

    def close(self) -> None:
        if self._sandbox is not None and self._owns_sandbox:
            self._sandbox.close()
            self._sandbox = None

    # one completion --------------------------------------------------------------------------------

    def _stream(self, question: str, style: str, *, max_new_tokens: int, temperature: float, seed: int,
                use_adapter: bool, deadline: float, notes: list[str], prefix: str = "") -> Iterator[str]:
        remaining = deadline - time.monotonic()
        if remaining <= 1:  # under a second left: a generation started now would be cut before its first lines
            raise _OutOfTime
        cap = min(self.max_time_s, remaining)
        prompt = render_eval(question, style, self.generator.tokenizer, self.generator.template, hint=self.pot_hint)
        started = time.monotonic()
        for text in self.generator.stream(prompt + prefix, max_new_tokens=max_new_tokens, temperature=temperature,
                                          seed=seed, max_time_s=cap, use_adapter=use_adapter):
            yield prefix + text
        if time.monotonic() - started >= 0.98 * cap:  # transformers' max_time stops at the first step past it
            notes.append(f"a generation stopped at its time limit ({cap:.0f} s); its answer may be cut short")

    def _prompt(self, question: str, style: str) -> str:
        """The prompt `_stream` renders for `question` in `style` (where a template may open a think block)."""
        return render_eval(question, style, self.generator.tokenizer, self.generator.template, hint=self.pot_hint)

    def _gold(self, question: str) -> str | None:
        reference = self.references.get(question.strip())
        return reference.answer if reference is not None else None

    @staticmethod
    def _read_cot(sample: Sample, text: str, gold: str | None = None, prompt: str = "") -> None:
        # the gold, when known, and the prompt (an R1 template opens the think block there), as evaluation passes them
        sample.answer, flexible = read_cot(text, gold, prompt)
        if sample.answer is not None:
            sample.shown_answer, sample.source = sample.answer, "the answer line"
            return
        sample.shown_answer = flexible
        sample.source = ("the last number in the text (no answer line: the evaluation would count it wrong)"
                         if sample.shown_answer is not None else "no answer found in the text")

    def _session(self) -> Any:
        """A fresh sandbox session (one interpreter per TIR answer), on the app's sandbox (started on first use)."""
        with self._sandbox_lock:
            if self._sandbox is None:
                from arithmo.sandbox import Sandbox

                self._sandbox = Sandbox(workers=1)
        return self._sandbox.session(timeout_s=self.program_timeout_s)

    def _sample_tir(self, question: str, *, notes: list[str], max_new_tokens: int,
                    **decoding: Any) -> Iterator[Sample]:
        """Tool-integrated reasoning as it happens, by evaluation's rules (`arithmo.evaluation.tir`): stream text
        until a code block's closing fence, run the block in this answer's own interpreter session, show its output
        block, stream on with what is left of the token budget."""
        from arithmo.evaluation.tir import MAX_TEXT_FENCES, TIR_KEEP, TIR_STOPS, count_tokens, shown_output
        from arithmo.generate import cut_at_stop
        from arithmo.prompts import output_block, pending_code

        tokenizer = self.generator.tokenizer
        sample, text, shown, used, session, fences = Sample(), "", [], 0, None, 0
        try:
            for _ in range(MAX_TOOL_CALLS + MAX_TEXT_FENCES + 1):
                prefix, new = text, ""
                left = max_new_tokens - used
                if left < 1:
                    notes.append(f"the answer used its whole budget of {max_new_tokens} tokens")
                    break
                for streamed in self._stream(question, "tir", notes=notes, prefix=prefix, max_new_tokens=left,
                                             **decoding):
                    new = streamed[len(prefix):]
                    cut = cut_at_stop(new, list(TIR_STOPS), TIR_KEEP)  # hand over at the closing fence
                    sample.text = prefix + cut
                    yield sample
                    if cut != new or cut.endswith(TIR_KEEP):
                        new = cut
                        break
                used += count_tokens(tokenizer, new)
                text = sample.text
                code = pending_code(text)
                if code is None and text.endswith(TIR_KEEP) and fences < MAX_TEXT_FENCES:
                    fences += 1  # a ```text fence stopped generation: go on without a tool call
                    continue
                if code is None or len(shown) >= MAX_TOOL_CALLS:
                    break
                if session is None:
                    session = self._session()
                result = session.run(code)
                if not session.alive:  # a crash or timeout ended it: the next block gets a fresh one
                    session.close()
                    session = None
                shown.append(describe_execution(result))
                text = text.rstrip() + "\n" + output_block(shown_output(result))  # what the evaluation appends
                sample.text, sample.program, sample.execution = text, code, shown[-1]
                yield sample
        finally:
            if session is not None:
                session.close()
        sample.execution = "\n\n".join(f"block {n}: {out}" for n, out in enumerate(shown, 1)) or "(no code block)"
        self._read_cot(sample, sample.text, self._gold(question), self._prompt(question, "tir"))
        yield sample

    def _sample(self, question: str, style: str, *, notes: list[str], **decoding: Any) -> Iterator[Sample]:
        """Yields the same Sample as it grows: streamed text, then program, execution and answer."""
        from arithmo.grading import extract_program

        if style == "tir":
            yield from self._sample_tir(question, notes=notes, **decoding)
            return

        sample = Sample()
        for text in self._stream(question, "cot" if style == "cot" else "pot", notes=notes, **decoding):
            sample.text = text
            yield sample
        if style == "cot":
            self._read_cot(sample, sample.text, self._gold(question), self._prompt(question, "cot"))
        else:
            sample.program = extract_program(sample.text)
            if sample.program is None:
                sample.execution, sample.source = "(no program found in the output)", "no program to run"
            else:
                result = self.run_program(sample.program)
                sample.execution = describe_execution(result)
                sample.answer = sample.shown_answer = program_answer(result)
                sample.source = "the program's output" if sample.answer is not None else "the program gave no answer"
            if style == "hybrid" and needs_cot_fallback(sample.answer):
                # MAmmoTH's hybrid decoding (Yue et al. 2023, sec. 2.4): no answer from the program -> CoT.
                head = sample.text + "\n\n── the program gave no answer: falling back to chain of thought ──\n\n"
                sample.text = head
                yield sample
                for text in self._stream(question, "cot", notes=notes, **decoding):
                    sample.text = head + text
                    yield sample
                self._read_cot(sample, sample.text[len(head):], self._gold(question), self._prompt(question, "cot"))
                sample.source += " (chain-of-thought fallback)"
        yield sample

    # requests ------------------------------------------------------------------------------------

    def answer(self, question: Any, style: str, temperature: float, max_new_tokens: int, k: int = 1,
               seed: int = 0, use_adapter: bool = True) -> Iterator[AnswerView]:
        """Answer `question` in `style` with k samples (k > 1: a majority vote); yields the view as it grows.

        Bad input yields one view whose status says what to change; nothing is generated.
        """
        view = AnswerView()
        try:
            question = check_question(question, self.max_question_chars)
            check_settings(style, temperature, max_new_tokens, k)
        except DemoInputError as err:
            view.status = f"⚠️ {err}"
            yield view
            return
        k, started = int(k), time.monotonic()
        decoding = dict(max_new_tokens=int(max_new_tokens), temperature=float(temperature), use_adapter=use_adapter,
                        deadline=started + self.max_request_s)
        samples: list[Sample] = []
        notes: list[str] = []
        try:
            for index in range(k):
                for sample in self._sample(question, style, notes=notes, seed=seed + index, **decoding):
                    self._show(view, [*samples, sample], k)
                    yield view
                samples.append(sample)
        except _OutOfTime:
            notes.append(f"the request reached its time limit ({self.max_request_s:.0f} s) after "
                         f"{len(samples)} of {k} samples")
        except (DemoInputError, TimeoutError) as err:  # TimeoutError: the model stayed busy with another request
            notes.append(str(err))
        self._finish(view, samples, k, question, notes, time.monotonic() - started)
        yield view

    def _show(self, view: AnswerView, samples: list[Sample], k: int) -> None:
        current = samples[-1]
        view.completion = current.text if k == 1 else "\n\n".join(
            f"── sample {number}/{k} ──\n{sample.text}" for number, sample in enumerate(samples, 1))
        view.program, view.execution = current.program or "", current.execution

    def _finish(self, view: AnswerView, samples: list[Sample], k: int, question: str, notes: list[str],
                seconds: float) -> None:
        lines = []
        if not samples:
            view.answer = ""
            lines.append("No answer: nothing was generated.")
        elif k == 1:
            sample = samples[0]
            view.answer, view.graded_answer = sample.shown_answer or "", sample.answer
            lines.append(f"Answer from {sample.source}." if sample.shown_answer else f"No answer: {sample.source}.")
        else:
            view.votes = vote_table([sample.answer for sample in samples])
            pooled = pool_answers([sample.answer for sample in samples])
            if pooled:
                winner, numbers = pooled[0]
                view.answer = view.graded_answer = winner
                chosen = samples[numbers[0] - 1]  # show the program of the first sample that voted for it
                view.program, view.execution = chosen.program or "", chosen.execution
                lines.append(f"Majority vote: {winner} with {len(numbers)} of {len(samples)} samples.")
            else:
                view.answer = ""
                lines.append(f"No answer: none of the {len(samples)} samples gave one.")
        reference = self.references.get(question)
        if reference is not None:
            # The verdict `python -m arithmo.eval` would give: on the strict answer (or the vote), never on the
            # last-number fallback shown when there is no answer line.
            view.correct = grade_answer(view.graded_answer, reference.answer)
            if view.graded_answer is not None:
                verdict = "matches ✓" if view.correct else "does not match ✗"
                lines.append(f"Reference answer ({reference.label}): {reference.answer}; the model's answer "
                             f"{verdict}.")
            else:
                lines.append(f"Reference answer ({reference.label}): {reference.answer}; no graded answer, so the "
                             "evaluation counts it wrong.")
        lines.extend(f"Note: {note}." for note in notes)
        lines.append(f"{len(samples)} sample{'s' if len(samples) != 1 else ''} in {seconds:.1f} s.")
        view.status = "\n\n".join(lines)

    def compare(self, question: Any, style: str, temperature: float, max_new_tokens: int,
                seed: int = 0) -> Iterator[tuple[AnswerView, AnswerView]]:
        """The base model's answer, then the adapter's, to the same question: (base view, adapter view)."""
        if not self.generator.has_adapter:
            message = ("⚠️ No adapter is loaded, so there is nothing to compare: start the app with --adapter DIR "
                       "(make demo trains runs/demo/adapter).")
            yield AnswerView(status=message), AnswerView(status=message)
            return
        base = AnswerView()
        for base in self.answer(question, style, temperature, max_new_tokens, 1, seed, use_adapter=False):
            yield base, AnswerView()
        for tuned in self.answer(question, style, temperature, max_new_tokens, 1, seed, use_adapter=True):
            yield base, tuned
