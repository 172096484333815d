"""Source adapters: the only code that knows each source's column names (docs/design.md, "Records").

An adapter turns one raw row into the fields of a MathExample, or names why the row is unusable.
A row missing a column the adapter needs is not "unusable": it means the file is not in the schema
the recipe claims, so it raises DataError naming the row and the column.

Schemas (from the datasets' cards on the hub):
- MetaMathQA (meta-math/MetaMathQA): query, response, type, original_question; every response ends in
  "The answer is: X". `type` is e.g. GSM_AnsAug, GSM_Rephrased, GSM_SV, GSM_FOBAR, MATH_AnsAug.
- MathInstruct (TIGER-Lab/MathInstruct): instruction, output, source; `source` is the file it came
  from, e.g. "data/CoT/gsm_rft.json" or "data/PoT/mathqa.json" -- the folder says CoT or PoT.
- Lila (allenai/lila, configs per task plus `iid` and `ood`): input, output_program, output_answer,
  split, dataset; every row is a program (PoT).
- DART-Math (hkust-nlp/dart-math-hard, hkust-nlp/dart-math-uniform): query, response; CoT responses by
  DeepSeekMath-7B-RL to GSM8K/MATH train queries, several per hard query on purpose (Tong et al. 2024).
- OpenMathInstruct-2 (nvidia/OpenMathInstruct-2; splits train, train_1M, train_2M, train_5M): problem,
  generated_solution, expected_answer, problem_source (gsm8k, math, augmented_gsm8k, augmented_math).
- NuminaMath-CoT (AI-MO/NuminaMath-CoT): source, problem, solution, messages (the same pair as a chat).
- GSM8K train (openai/gsm8k, config main): question, answer (ends "#### <number>").
- MATH train (EleutherAI/hendrycks_math, one config per subject): problem, level, type, solution (\\boxed).
Long chain-of-thought sources (reasoning traces; the trace and its answer are kept apart, `reasoning` and
`solution`, and rendered into the template's think block by `arithmo.thinking`; shared parts in
`arithmo.data.reasoning`):
- OpenR1-Math-220k (open-r1/OpenR1-Math-220k, https://huggingface.co/datasets/open-r1/OpenR1-Math-220k; configs
  default/extended/all): problem, solution, answer, problem_type, question_type, source, uuid,
  is_reasoning_complete (list of bool), generations (list of str: DeepSeek-R1's `<think>...</think> answer`),
  correctness_math_verify (list of bool), correctness_llama (list of bool, or null: Llama-3.3-70B as a judge for
  ~12% of rows), finish_reasons (list of str), correctness_count, messages. Several generations per problem: only
  complete ones marked correct (by math-verify, else by the Llama judge) are kept, the first or all
  (`per_problem`); every generation is one unit in the ledger.
- OpenMathReasoning (nvidia/OpenMathReasoning, https://huggingface.co/datasets/nvidia/OpenMathReasoning; splits
  cot, tir, genselect): expected_answer, problem_type, problem_source, generation_model, problem,
  generated_solution (`<think>...</think> summary`), inference_mode (cot / tir / genselect). TIR solutions call
  the interpreter with `<tool_call>` blocks, rewritten to arithmo's ```python blocks (style tir); genselect rows
  (choosing among candidate solutions) are not SFT solutions of the problem and are dropped, counted.
- s1K-1.1 (simplescaling/s1K-1.1, https://huggingface.co/datasets/simplescaling/s1K-1.1): solution, question,
  cot_type, source_type, metadata, gemini_thinking_trajectory, gemini_attempt, deepseek_thinking_trajectory,
  deepseek_attempt (+ deepseek_grade in later revisions). The DeepSeek-R1 trace and attempt are read (s1.1 trained
  on those, all 1,000 regardless of grade; the grade is kept in meta). A trace or attempt holding a think tag of
  its own is dropped (`trace_nested_think`, as `split_trace` drops one), never left for training to refuse.
- LIMO (GAIR/LIMO, https://huggingface.co/datasets/GAIR/LIMO, limo.jsonl): question, solution, answer. The
  solution is one long reasoning chain without think tags, ending in a "**Final Answer**" line: the chain is the
  reasoning, the final-answer part the answer (the stated `answer`, boxed, when the chain has no such line); a
  chain holding a think tag is split by `split_trace` (`</think>`) or dropped (`trace_nested_think`).
The generic formats a user brings from other kits (chat messages, alpaca, TRL prompt-completion) are in
`arithmo.data.formats` and registered here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arithmo.io import DataError

Mapped = dict[str, Any]  # question, solution, style, answer, meta


def _require(row: dict, keys: tuple[str, ...], where: str, adapter: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        present = ", ".join(sorted(map(str, row))) or "none"
        raise DataError(
            f"{where}: missing field(s) {', '.join(repr(k) for k in missing)} for the {adapter} schema "
            f"(fields present: {present})"
        )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _skip_reason(question: str, solution: str) -> str | None:
    if not question:
        return "empty_question"
    if not solution:
        return "empty_solution"
    return None


def adapt_metamathqa(row: dict, where: str) -> Mapped | str:
    _require(row, ("query", "response"), where, "MetaMathQA")
    question, solution = _text(row["query"]), _text(row["response"])
    reason = _skip_reason(question, solution)
    if reason:
        return reason
    meta = {"type": _text(row.get("type")), "original_question": _text(row.get("original_question"))}
    return {"question": question, "solution": solution, "style": "cot", "answer": None, "meta": meta}


def mathinstruct_style(source_path: str) -> str:
    """MathInstruct's `source` is a path like data/PoT/mathqa.json; the folder names the style."""
    parts = [p.lower() for p in source_path.replace("\\", "/").split("/")]
    return "pot" if "pot" in parts else "cot"


def adapt_mathinstruct(row: dict, where: str) -> Mapped | str:
    _require(row, ("instruction", "output", "source"), where, "MathInstruct")
    question, solution = _text(row["instruction"]), _text(row["output"])
    reason = _skip_reason(question, solution)
    if reason:
        return reason
    path = _text(row["source"])
    return {"question": question, "solution": solution, "style": mathinstruct_style(path),
            "answer": None, "meta": {"path": path}}


def adapt_lila(row: dict, where: str) -> Mapped | str:
    _require(row, ("input", "output_program"), where, "Lila")
    question, program = _text(row["input"]), _text(row["output_program"])
    reason = _skip_reason(question, program)
    if reason:
        return reason
    answer = _text(row.get("output_answer")) or None
    meta = {"dataset": _text(row.get("dataset")), "split": _text(row.get("split"))}
    return {"question": question, "solution": program, "style": "pot", "answer": answer, "meta": meta}


def _cot(question: str, solution: str, answer: str | None = None, meta: dict | None = None) -> Mapped | str:
    reason = _skip_reason(question, solution)
    if reason:
        return reason
    return {"question": question, "solution": solution, "style": "cot", "answer": answer, "meta": meta or {}}


def adapt_dart_math(row: dict, where: str) -> Mapped | str:
    _require(row, ("query", "response"), where, "DART-Math")
    return _cot(_text(row["query"]), _text(row["response"]))


def adapt_openmath2(row: dict, where: str) -> Mapped | str:
    _require(row, ("problem", "generated_solution"), where, "OpenMathInstruct-2")
    # expected_answer: the reference answer for GSM8K/MATH problems, the majority vote for augmented ones
    # (the card); kept as the row's answer unless the solution's own final answer is extracted.
    return _cot(_text(row["problem"]), _text(row["generated_solution"]), _text(row.get("expected_answer")) or None,
                {"problem_source": _text(row.get("problem_source"))})


def adapt_numinamath(row: dict, where: str) -> Mapped | str:
    _require(row, ("problem", "solution"), where, "NuminaMath-CoT")
    # `messages` repeats problem and solution as a user/assistant pair; the plain columns are read.
    return _cot(_text(row["problem"]), _text(row["solution"]), meta={"source": _text(row.get("source"))})


def adapt_numinamath_tir(row: dict, where: str) -> Mapped | str:
    """NuminaMath-TIR: `problem`, and a `solution` that interleaves text, ```python blocks and their recorded
    ```output blocks, ending in a boxed answer (style tir; `messages` repeats the pair and is not read)."""
    _require(row, ("problem", "solution"), where, "NuminaMath-TIR")
    question, solution = _text(row["problem"]), _text(row["solution"])
    reason = _skip_reason(question, solution)
    if reason:
        return reason
    if "```python" not in solution:
        return "tir_no_code"  # a solution without a code block is not tool-integrated
    return {"question": question, "solution": solution, "style": "tir", "answer": None, "meta": {}}


def adapt_gsm8k(row: dict, where: str) -> Mapped | str:
    _require(row, ("question", "answer"), where, "GSM8K")
    return _cot(_text(row["question"]), _text(row["answer"]))  # the "#### X" tail is folded by transforms


def adapt_math(row: dict, where: str) -> Mapped | str:
    _require(row, ("problem", "solution"), where, "MATH")
    meta = {"level": _text(row.get("level")), "type": _text(row.get("type"))}
    return _cot(_text(row["problem"]), _text(row["solution"]), meta=meta)


# ---------------------------------------------------------------------------------------------- long CoT


def _trace_example(question: str, reasoning: str, answer_text: str, style: str, answer: str | None,
                   meta: dict) -> Mapped | str:
    if not question:
        return "empty_question"
    return {"question": question, "solution": answer_text, "reasoning": reasoning, "style": style,
            "answer": answer, "meta": meta}


def _per_generation(row: dict, key: str, n: int, where: str, adapter: str) -> list:
    """A per-generation list column; null (OpenR1's correctness_llama on most rows) is n Nones. A list of another
    length is a DataError naming the row: which value belongs to which generation is unknown."""
    value = row.get(key)
    if value is None:
        return [None] * n
    if hasattr(value, "tolist") and not isinstance(value, list):  # a numpy array (pandas / parquet readers)
        value = value.tolist()
    if not isinstance(value, list) or len(value) != n:
        raise DataError(f"{where}: {key!r} should be a list of {n} values, one per generation, for the {adapter} "
                        f"schema (got {type(value).__name__} of length {len(value) if isinstance(value, list) else '-'})")
    return value


def _bool_list(row: dict, key: str, n: int, where: str, adapter: str) -> list[bool | None]:
    """`_per_generation` of a flag column: each value True, False or None (numpy's bool_, as pandas and parquet
    readers give it, is a bool); any other value is a DataError naming the row, never read as False."""
    flags = []
    for value in _per_generation(row, key, n, where, adapter):
        if value is None or isinstance(value, bool):
            flags.append(value)
        elif type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"):  # numpy's bool
            flags.append(bool(value))
        else:
            raise DataError(f"{where}: {key!r} holds {value!r}: expected true, false or null per generation for "
                            f"the {adapter} schema")
    return flags


def adapt_openr1_math(row: dict, where: str, per_problem: str = "one") -> list[Mapped | str]:
    """One outcome per generation: an example, or why it is not one (`generation_incorrect`: neither math-verify
    nor the Llama judge marked it correct; `empty_generation`: a null or blank generation; `trace_incomplete`:
    is_reasoning_complete false or finish reason not `stop`; a `split_trace` reason; `generation_not_chosen`: a
    usable one past the first with per_problem=one). A per-generation column (flags, finish_reasons) that is not
    a list of one value per generation, or a flag that is not a boolean, is a DataError naming the row."""
    from arithmo.data.reasoning import split_trace

    _require(row, ("problem", "generations", "correctness_math_verify", "is_reasoning_complete"), where,
             "OpenR1-Math")
    generations = row["generations"]
    if not isinstance(generations, list):
        raise DataError(f"{where}: 'generations' should be a list of strings for the OpenR1-Math schema "
                        f"(got {type(generations).__name__})")
    if not generations:
        return ["no_generations"]
    n = len(generations)
    verified = _bool_list(row, "correctness_math_verify", n, where, "OpenR1-Math")
    judged = _bool_list(row, "correctness_llama", n, where, "OpenR1-Math")
    complete = _bool_list(row, "is_reasoning_complete", n, where, "OpenR1-Math")
    finish = _per_generation(row, "finish_reasons", n, where, "OpenR1-Math")
    question = _text(row["problem"])
    meta = {"source": _text(row.get("source")), "problem_type": _text(row.get("problem_type")),
            "uuid": _text(row.get("uuid"))}
    outcomes: list[Mapped | str] = []
    chosen = False
    for i, text in enumerate(generations):
        if not question:
            outcomes.append("empty_question")
            continue
        if not (verified[i] is True or judged[i] is True):
            outcomes.append("generation_incorrect")
            continue
        if text is None or not str(text).strip():  # a missing generation is not a trace without think tags
            outcomes.append("empty_generation")
            continue
        if complete[i] is not True or finish[i] not in (None, "stop"):
            outcomes.append("trace_incomplete")
            continue
        split = split_trace(_text(text))
        if isinstance(split, str):
            outcomes.append(split)
            continue
        if chosen and per_problem == "one":
            outcomes.append("generation_not_chosen")
            continue
        chosen = True
        outcomes.append(_trace_example(question, split[0], split[1], "cot", _text(row.get("answer")) or None,
                                       {**meta, "generation": i}))
    return outcomes


def adapt_openmathreasoning(row: dict, where: str) -> Mapped | str:
    from arithmo.data.reasoning import split_trace, tir_markup

    _require(row, ("problem", "generated_solution", "inference_mode"), where, "OpenMathReasoning")
    mode = _text(row["inference_mode"]).lower()
    if mode == "genselect":
        return "genselect_not_sft"  # a choice among candidate solutions, not a solution of the problem
    if mode not in ("cot", "tir"):
        raise DataError(f"{where}: inference_mode {row['inference_mode']!r}: expected cot, tir or genselect for "
                        "the OpenMathReasoning schema")
    text = _text(row["generated_solution"])
    if mode == "tir":
        mapped = tir_markup(text)
        if isinstance(mapped, str):
            return mapped
        text, calls = mapped
        if not calls:
            return "tir_no_code"
    split = split_trace(text)
    if isinstance(split, str):
        return split
    meta = {"problem_type": _text(row.get("problem_type")), "problem_source": _text(row.get("problem_source")),
            "generation_model": _text(row.get("generation_model"))}
    return _trace_example(_text(row["problem"]), split[0], split[1], mode, _text(row.get("expected_answer")) or None,
                          meta)


def adapt_s1k(row: dict, where: str) -> Mapped | str:
    _require(row, ("question", "deepseek_thinking_trajectory", "deepseek_attempt"), where, "s1K-1.1")
    from arithmo.data.reasoning import MAX_TRACE_CHARS, think_tag_reason

    reasoning, attempt = _text(row["deepseek_thinking_trajectory"]), _text(row["deepseek_attempt"])
    if len(reasoning) > MAX_TRACE_CHARS:
        return "trace_too_long"
    if not reasoning:
        return "empty_reasoning"
    if not attempt:
        return "empty_answer"
    tagged = think_tag_reason(reasoning, attempt)  # R1 sometimes writes the tags inside its own trace
    if tagged:
        return tagged
    meta = {"cot_type": _text(row.get("cot_type")), "source_type": _text(row.get("source_type")),
            "deepseek_grade": _text(row.get("deepseek_grade"))}
    return _trace_example(_text(row["question"]), reasoning, attempt, "cot", None, meta)


_FINAL_ANSWER = "**Final Answer**"


def adapt_limo(row: dict, where: str) -> Mapped | str:
    from arithmo.data.reasoning import MAX_TRACE_CHARS, split_trace, think_tag_reason

    _require(row, ("question", "solution"), where, "LIMO")
    solution, answer = _text(row["solution"]), _text(row.get("answer")) or None
    if len(solution) > MAX_TRACE_CHARS:
        return "trace_too_long"
    if "</think>" in solution:  # a chain already in the R1 layout
        split = split_trace(solution)
        if isinstance(split, str):
            return split
        reasoning, answer_text = split
    else:
        at = solution.rfind(_FINAL_ANSWER)
        reasoning = solution[:at].strip() if at >= 0 else solution
        answer_text = solution[at:].strip() if at >= 0 else (f"\\boxed{{{answer}}}" if answer else "")
    if not reasoning:
        return "empty_reasoning"
    if not answer_text:
        return "empty_answer"
    tagged = think_tag_reason(reasoning, answer_text)  # a lone <think> (or one in the answer) outside R1's layout
    if tagged:
        return tagged
    return _trace_example(_text(row["question"]), reasoning, answer_text, "cot", answer, {})


ADAPTERS: dict[str, Callable[..., Mapped | str | list]] = {
    "metamathqa": adapt_metamathqa,
    "mathinstruct": adapt_mathinstruct,
    "lila": adapt_lila,
    "dart_math": adapt_dart_math,
    "openmath2": adapt_openmath2,
    "numinamath": adapt_numinamath,
    "numinamath_tir": adapt_numinamath_tir,
    "gsm8k_train": adapt_gsm8k,
    "math_train": adapt_math,
    "openr1_math": adapt_openr1_math,
    "openmathreasoning": adapt_openmathreasoning,
    "s1k": adapt_s1k,
    "limo": adapt_limo,
}

# Every column each adapter reads (required or not): tests/test_hub_schemas.py checks them against the cards.
COLUMNS: dict[str, tuple[str, ...]] = {
    "metamathqa": ("query", "response", "type", "original_question"),
    "mathinstruct": ("instruction", "output", "source"),
    "lila": ("input", "output_program", "output_answer", "dataset", "split"),
    "dart_math": ("query", "response"),
    "openmath2": ("problem", "generated_solution", "expected_answer", "problem_source"),
    "numinamath": ("source", "problem", "solution"),
    "numinamath_tir": ("problem", "solution"),
    "gsm8k_train": ("question", "answer"),
    "math_train": ("problem", "solution", "level", "type"),
    "openr1_math": ("problem", "answer", "generations", "correctness_math_verify", "correctness_llama",
                    "is_reasoning_complete", "finish_reasons", "source", "problem_type", "uuid"),
    "openmathreasoning": ("problem", "generated_solution", "inference_mode", "expected_answer", "problem_type",
                          "problem_source", "generation_model"),
    "s1k": ("question", "deepseek_thinking_trajectory", "deepseek_attempt", "cot_type", "source_type",
            "deepseek_grade"),
    "limo": ("question", "solution", "answer"),
}

# Sources with several solutions per problem, and their `per_problem` default (SourceConfig.per_problem): one keeps
# the first usable solution of each problem, all keeps every one. OpenR1-Math holds a problem's generations in one
# row; OpenMathReasoning writes each solution as its own row (several per problem, as the card ships them), so the
# build keeps the first row of each problem text (`arithmo.data.sources.read_source`: `solution_not_chosen`).
PER_PROBLEM = {"openr1_math": "one", "openmathreasoning": "all"}
# Of those, the adapters that yield one outcome per generation (a list) and take `per_problem` themselves.
PER_GENERATION = ("openr1_math",)

# The generic formats: their columns depend on the kit that wrote them (messages/conversations, role/from ...).
from arithmo.data.formats import FORMATS  # noqa: E402  (formats.py imports the helpers above)

ADAPTERS.update(FORMATS)
COLUMNS.update({name: () for name in FORMATS})

# Local Lila files hold all splits in one file: the `split` column selects rows.
SPLIT_COLUMN = {"lila": "split"}
