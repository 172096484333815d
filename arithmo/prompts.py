"""Prompt templates and PoT hint phrases; training and evaluation render through the same functions.

- `render_prompt(question, tokenizer, template)`: the text a model sees before its answer.
  `plain` is `Question: {q}\\n\\nAnswer:` (for base models, as MetaMath/Arithmo trained); `chat` uses
  the tokenizer's chat template (for instruct models); `auto` picks `chat` when the tokenizer has one.
- `render_sft(record, ...)`: an SFTRecord -> {"prompt", "completion"} strings for TRL.
- `render_eval(question, style, ...)`: the evaluation prompt for CoT or PoT.
- PoT rows carry one hint phrase asking for a program. Fixed triggers in sources (MathInstruct's PoT
  questions end in a handful of stock sentences) are replaced by a phrase drawn from `POT_HINTS`, so
  a model does not learn to write programs only when it sees one exact sentence.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any, Literal

from arithmo.thinking import answer_completion, think_completion

Template = Literal["auto", "plain", "chat"]

PLAIN_TEMPLATE = "Question: {question}\n\nAnswer:"

# The final line every CoT completion ends with (MetaMath / Arithmo format).
ANSWER_PREFIX = "The answer is: "

# Written for this project: 120 ways to ask for a program that prints the answer. They vary the verb,
# the register and the length so that no single sentence becomes the trigger.
POT_HINTS: tuple[str, ...] = (
    "Write a Python program to solve this.",
    "Solve this with a Python program that prints the answer.",
    "Answer by writing a Python program.",
    "Please write a Python program that computes the answer.",
    "Use Python to work this out and print the result.",
    "Write a short program in Python that prints the final answer.",
    "Respond with a Python program that solves the problem.",
    "Let's solve this by writing a Python program.",
    "Let's write some Python code to find the answer.",
    "Compute the answer with a Python program.",
    "Give a Python program whose output is the answer.",
    "Write Python code that calculates and prints the answer.",
    "Solve it programmatically in Python.",
    "Could you write a Python script that solves this?",
    "Produce a Python program that outputs the solution.",
    "Think it through in Python: write a program that prints the answer.",
    "Translate the problem into a Python program and print the result.",
    "Model this problem in Python and print what it asks for.",
    "Write a program in Python to find the answer.",
    "Using Python, compute and print the answer.",
    "Reply with Python code that prints the answer.",
    "A Python program that prints the answer, please.",
    "Work this out with Python code.",
    "Let Python do the arithmetic: write a program that prints the answer.",
    "Write a Python solution that prints only the final answer.",
    "Solve by coding it up in Python.",
    "Put together a Python program that answers the question.",
    "Express the solution as a Python program.",
    "Code a solution in Python and print the result.",
    "Formulate the calculation as Python code that prints the answer.",
    "Please answer with a runnable Python program.",
    "Write a Python function to solve this, call it, and print the result.",
    "Set up the quantities as Python variables and print the answer.",
    "Show your work as a Python program that prints the answer.",
    "Write a self-contained Python program that prints the answer.",
    "Solve using Python; the program should print the answer.",
    "Let's think in code: write a Python program for this.",
    "Write a Python program. It should print the answer.",
    "Find the answer by writing and running a Python program.",
    "Build a small Python program that solves the problem.",
    "Craft a Python program that works out the answer.",
    "Implement the solution in Python and print it.",
    "Please solve this with Python code.",
    "Answer with a program written in Python.",
    "Write Python code to solve the problem above.",
    "Turn this word problem into Python code that prints the answer.",
    "Solve the problem with a Python program; print the final value.",
    "Use a Python program to get the answer.",
    "Compose a Python program that solves this problem.",
    "Draft a Python script that prints the answer.",
    "Write a Python program that reasons through the problem and prints the answer.",
    "Let's use Python to solve this.",
    "Let's compute this in Python.",
    "Let's program the solution in Python.",
    "Let's have Python do the work.",
    "Time to write some Python: solve the problem and print the answer.",
    "Please provide a Python program that outputs the answer.",
    "Write code in Python that prints the result of this problem.",
    "Solve the following with Python code that prints the answer.",
    "Create a Python program to calculate the answer.",
    "Develop a Python program that finds the answer.",
    "Write a concise Python program to compute the answer.",
    "Write a clear Python program, with named variables, that prints the answer.",
    "Calculate the answer using a Python program.",
    "Determine the answer with Python code.",
    "Work out the answer in Python and print it.",
    "Write a Python program to calculate this.",
    "Solve this problem by programming it in Python.",
    "Write the solution as Python code.",
    "Give Python code that solves this and prints the answer.",
    "Program a solution in Python.",
    "Write a Python snippet that prints the answer.",
    "Answer this question by writing Python code.",
    "Write a Python program that prints the numerical answer.",
    "Write a Python program that prints the exact answer.",
    "Answer in Python: a program that prints the result.",
    "Make a Python program that solves the problem and prints the answer.",
    "Represent the problem in Python and print the answer.",
    "Encode the problem in Python and print the solution.",
    "Let's reason in Python and print the answer.",
    "Solve it with code: write a Python program.",
    "Respond in Python code that prints the answer.",
    "Please reply with a Python program.",
    "Write a Python program that computes and prints the answer to this question.",
    "Solve this question with a Python program.",
    "Try solving this with a Python program.",
    "You can use Python: write a program that prints the answer.",
    "Use Python code to solve this problem.",
    "Write a program (in Python) that prints the answer.",
    "Write a Python program; print the answer at the end.",
    "Solve the problem in Python.",
    "Solve this in Python.",
    "Solve this using Python.",
    "Code this up in Python and print the answer.",
    "Write and print the answer with a Python program.",
    "Give a short Python program that computes the answer.",
    "Answer with Python code only.",
    "Write a Python program that solves this math problem.",
    "Write a Python program for this math problem and print the answer.",
    "Put the computation in a Python program and print the result.",
    "Write Python to compute the answer.",
    "Use a short Python script to find the answer.",
    "Answer by programming in Python.",
    "Let's write a program to find the answer.",
    "Write a program to solve this problem.",
    "Please write a program that prints the answer.",
    "Solve this with a program.",
    "Answer with a program that prints the result.",
    "Write a computer program that prints the answer.",
    "Write a program that computes the answer.",
    "Find the answer with a short program.",
    "Solve this by writing code that prints the answer.",
    "Write code that solves this and prints the answer.",
    "Let's solve this with code.",
    "Let's write code to solve this.",
    "Please solve this by writing code.",
    "Write executable Python code that prints the answer.",
    "Provide Python code; its printed output should be the answer.",
    "Write a Python program whose printed output is the final answer.",
    "Answer using a Python program that ends by printing the result.",
)

# Stock trigger sentences found at the end of PoT questions in sources (MathInstruct's PoT subsets use
# a few fixed sentences such as "Let's write a Python program." and "Please write a program to solve
# it"). A final sentence is a trigger when it asks for code: it names Python/program/code and reads as
# a request, not as part of the problem.
_TRIGGER_SENTENCE = re.compile(
    r"""(?:^|(?<=[.?!:])\s+|\n+)                          # sentence start
        (?P<trigger>
          (?=[^.?!\n]*\b(?:python\w*|program(?:me|ming)?|code|script)\b)   # asks for code somewhere
          (?:let'?s|let\ us|please|write|solve|answer|respond|reply|craft|sculpt|compose|create|
             develop|use|using|code|program|python|pythonize|how\ about|can\ you|could\ you|you\ can|
             time\ to|think|work|give|produce|provide|build|put|make|implement|translate|model|
             express|draft|find|calculate|compute|determine|formulate|set\ up|show|turn|represent|
             encode|try)\b
          [^.?!\n]*[.?!]?
        )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def strip_pot_trigger(question: str) -> tuple[str, bool]:
    """Remove a trailing 'write a program' sentence; returns (question, whether one was removed)."""
    text = question.rstrip()
    for hint in POT_HINTS:  # our own phrases first: some have two sentences
        if text.endswith(hint) and len(text) > len(hint):
            return text[: -len(hint)].rstrip(), True
    removed = False
    # Some questions stack two triggers ("Let's write a program. Python it up!"): strip repeatedly.
    for _ in range(3):
        match = _TRIGGER_SENTENCE.search(text)
        if not match or match.start("trigger") == 0:
            break
        text = text[: match.start("trigger")].rstrip()
        removed = True
    return text, removed


def stable_rng(seed: int, key: str) -> random.Random:
    """A Random seeded by (seed, key): a row's draws do not depend on the order rows are processed."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


def add_pot_hint(question: str, rng: random.Random, hints: tuple[str, ...] = POT_HINTS) -> str:
    """The question followed by one hint phrase drawn from `hints`."""
    return f"{question.rstrip()} {rng.choice(hints)}"


def render_prompt(question: str, tokenizer: Any = None, template: Template = "auto") -> str:
    """The prompt text for one question (the user's turn), ending where the model's answer begins."""
    if template == "auto":
        template = "chat" if getattr(tokenizer, "chat_template", None) else "plain"
    if template == "plain":
        return PLAIN_TEMPLATE.format(question=question)
    if template != "chat":
        raise ValueError(f"template: expected 'auto', 'plain' or 'chat', got {template!r}")
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ValueError("template 'chat' needs a tokenizer with a chat_template; use template='plain'")
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )


def _encode(tokenizer: Any, text: str, offsets: bool = False) -> Any:
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and text.startswith(bos))
    extra = {"return_offsets_mapping": True} if offsets else {}  # offsets: fast tokenizers only, and only for TIR
    return tokenizer(text, add_special_tokens=add_special, **extra)


def prompt_token_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a prompt, with the tokenizer's special tokens (BOS) unless the text already starts with it.

    A chat template that writes the BOS itself (Llama-3's `<|begin_of_text|>`, Mistral's `<s>`) would otherwise
    get a second one from the tokenizer: a doubled BOS the model never saw in pretraining. Training
    (`tokenize_sft`) and generation (`arithmo.generate`, transformers and vLLM) both use this one rule, so the
    model is trained on exactly the ids it is later prompted with.
    """
    return list(_encode(tokenizer, text)["input_ids"])


_PROBE = "ARITHMO_END_OF_TURN_PROBE"


def end_of_turn(tokenizer: Any, template: Template = "auto") -> str:
    """The text that ends an answer: what the chat template writes after an assistant message (ChatML's
    `<|im_end|>`, Llama-3's `<|eot_id|>`, Gemma's `<end_of_turn>`, Mistral's `</s>`), else the tokenizer's
    eos token (the plain template); "" when there is neither."""
    uses_chat = template == "chat" or (template == "auto" and getattr(tokenizer, "chat_template", None))
    if uses_chat and tokenizer is not None:
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": "?"}, {"role": "assistant", "content": _PROBE}], tokenize=False)
        if _PROBE in rendered:
            suffix = rendered.split(_PROBE, 1)[1].strip()
            if suffix:
                return suffix
    return getattr(tokenizer, "eos_token", None) or ""


def turn_end_ids(tokenizer: Any, shipped: Any = None) -> list[int]:
    """Every token id a turn ends on -- the one rule that loading (generation_config), both generation backends,
    RFT, GRPO (TRL reads generation_config) and export (generation_config.json, the Modelfile) use.

    In order: the tokenizer's eos; the chat template's end of turn when the tokenizer has a chat template and it is
    one token (Llama-3 ends a turn with <|eot_id|> while its eos is <|end_of_text|>; training appends it, see
    `render_sft`); then every id the model ships in its generation_config (`shipped`: an int or a list, e.g. an
    instruct model's [eos, end_of_turn]), none dropped. Duplicates are removed.
    """
    ids: list[int] = []

    def add(value: Any) -> None:
        if value is not None and int(value) not in ids:
            ids.append(int(value))

    add(getattr(tokenizer, "eos_token_id", None))
    if getattr(tokenizer, "chat_template", None):
        end = end_of_turn(tokenizer, "chat")
        pieces = tokenizer(end, add_special_tokens=False)["input_ids"] if end else []
        if len(pieces) == 1:
            add(pieces[0])
    for value in shipped if isinstance(shipped, (list, tuple)) else [shipped]:
        add(value)
    return ids


def stop_strings(tokenizer: Any, template: Template = "auto") -> list[str]:
    """Text that ends an answer besides the end-of-turn tokens: with the plain template, a base model goes on to
    invent the next question, so "\nQuestion:" ends it; a chat template's turn ends on its token only.
    Evaluation, RFT, the app and the exported Modelfile stop on the same strings."""
    uses_chat = template == "chat" or (template == "auto" and getattr(tokenizer, "chat_template", None))
    return [] if uses_chat else ["\n" + PLAIN_TEMPLATE.split("{", 1)[0].strip()]


def render_sft(record: dict, tokenizer: Any = None, template: Template = "auto") -> dict[str, str]:
    """An SFTRecord as the {"prompt", "completion"} strings that training tokenizes.

    The prompt is what `render_eval` gives for the same question. The completion is the record's, stripped,
    starting with a space after the plain template's "Answer:", and ending with `end_of_turn(tokenizer,
    template)` appended: the chat template's end-of-turn text (`<|im_end|>`, `<|eot_id|>`, ...) or, with the
    plain template, the tokenizer's eos token. That token is one generation stops on
    (`turn_end_ids`), so the model learns to stop where generation ends. A record with `reasoning` (long CoT) gets
    it in the template's think block before the answer (`arithmo.thinking.think_completion`; ThinkError when the
    template cannot take it); one without is written as the template writes a turn that does not think
    (`arithmo.thinking.answer_completion`: R1-distill closes its opened block empty, Qwen3 writes its empty block).
    """
    prompt = render_prompt(record["prompt"], tokenizer, template)
    end = end_of_turn(tokenizer, template) if tokenizer is not None else ""
    uses_chat = template == "chat" or (template == "auto" and bool(getattr(tokenizer, "chat_template", None)))
    if record.get("reasoning"):  # long CoT: the reasoning goes in the template's think block (arithmo.thinking)
        completion = think_completion(prompt, record["prompt"], record["reasoning"], record["completion"],
                                      tokenizer, uses_chat, end)
    else:  # no reasoning: as the template writes a turn that does not think (R1 and Qwen3: an empty block first)
        completion = answer_completion(prompt, record["prompt"], record["completion"], tokenizer, uses_chat, end)
    return {"prompt": prompt, "completion": (" " + completion) if prompt.endswith(":") else completion}


def tokenize_sft(rendered: dict[str, str], tokenizer: Any,
                 masked_spans: list[tuple[int, int]] | tuple = ()) -> tuple[list[int], list[int]]:
    """(input_ids, completion_mask) of a rendered record: 1 on completion tokens (the loss), 0 on the prompt.

    prompt + completion is tokenized as one text (so tokens that merge across the boundary, and SentencePiece's
    leading space, come out as they would in one pass) with `prompt_token_ids`' BOS rule; the completion starts
    where those ids leave the prompt's own ids. `masked_spans` are (start, end) character spans of the
    completion whose tokens carry no loss either: a TIR solution's output blocks (`tir_output_spans`), which the
    interpreter writes, not the model. A token that overlaps a span is masked (a fast tokenizer's offsets).
    """
    prompt_ids = prompt_token_ids(tokenizer, rendered["prompt"])
    text = rendered["prompt"] + rendered["completion"]
    encoded = _encode(tokenizer, text, offsets=bool(masked_spans))
    ids = list(encoded["input_ids"])
    shared = 0
    while shared < min(len(prompt_ids), len(ids)) and prompt_ids[shared] == ids[shared]:
        shared += 1
    mask = [0] * shared + [1] * (len(ids) - shared)
    if masked_spans:
        base = len(rendered["prompt"])
        spans = [(base + start, base + end) for start, end in masked_spans]
        for index, (start, end) in enumerate(encoded["offset_mapping"]):
            if any(start < span_end and end > span_start for span_start, span_end in spans):
                mask[index] = 0
    return ids, mask


def render_eval(
    question: str,
    style: Literal["cot", "pot", "tir"],
    tokenizer: Any = None,
    template: Template = "auto",
    hint: str = POT_HINTS[0],
) -> str:
    """The evaluation prompt: the bare question for CoT, the question plus a PoT hint for PoT, the question
    plus `TIR_INSTRUCTION` for tool-integrated reasoning."""
    if style == "pot":
        question = f"{question.rstrip()} {hint}"
    elif style == "tir":
        question = add_tir_instruction(question)
    elif style != "cot":
        raise ValueError(f"style: expected 'cot', 'pot' or 'tir', got {style!r}")
    return render_prompt(question, tokenizer, template)


# ----------------------------------------------------------------------------------------------
# tool-integrated reasoning (TIR): text, then a ```python block, its ```output block (written by the
# interpreter), more text and blocks, and a final answer -- the format of ToRA (Gou et al. 2024),
# NuminaMath-TIR and Qwen2.5-Math's TIR mode.

# Qwen2.5-Math's TIR instruction (its evaluation prompt "tool-integrated"), asking for reasoning with programs.
TIR_INSTRUCTION = ("Please integrate natural language reasoning with programs to solve the problem above, and put "
                   "your final answer within \\boxed{}.")
CODE_FENCE, OUTPUT_FENCE = "```python\n", "```output\n"
# Where generation hands a code block to the interpreter: its closing fence and the newline after it (the opening
# fence, "```python\n", does not contain it). The model writes it and is trained to (it is outside the output
# spans); the interpreter writes everything from OUTPUT_FENCE to the end of the output block. NeMo-Skills' TIR
# loop stops on its code-end marker the same way. A fence that closes a block of another language (```text) also
# stops generation; the TIR loop then lets the model go on without a tool call (`pending_code` is None for it).
CODE_END = "```\n"
CODE_ENDS = (CODE_END, "```\r\n", "``` \n")  # the closing fence as models write it: plain, CRLF, a trailing space
# Language tags of a block the interpreter runs (those arithmo's PoT reader accepts, arithmo.grading.extract,
# less the untagged fence, which in a TIR solution is as likely text as code).
TIR_CODE_LANGS = ("python", "python3", "py", "py3", "ipython")
_FENCE_LINE = re.compile(r"([ \t]*)```[ \t]*([\w+-]*)[ \t]*\r?")
_OUTPUT_BLOCK = re.compile(r"```output[ \t]*\r?\n.*?```[ \t]*(?:\r?\n)?", re.DOTALL)
MAX_TOOL_OUTPUT_CHARS = 1000  # an output block longer than this is cut (a program that prints a table)
PRINTED_FENCE = "'''"  # what a fence a program printed becomes inside an output block


def add_tir_instruction(question: str) -> str:
    """The question followed by `TIR_INSTRUCTION` (once)."""
    question = question.rstrip()
    return question if question.endswith(TIR_INSTRUCTION) else f"{question}\n\n{TIR_INSTRUCTION}"


def tir_output_spans(completion: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the output blocks in a TIR completion: fences included, the newline
    after the closing fence too (all of it is the interpreter's text, masked out of the loss). The code block's
    closing fence before it (`CODE_END`) is the model's: evaluation hands over to the interpreter only once the
    model has written it."""
    return [match.span() for match in _OUTPUT_BLOCK.finditer(completion)]


def output_block(text: str) -> str:
    """What the interpreter appends after a code block: its output (or error line) in an output fence.

    At most MAX_TOOL_OUTPUT_CHARS characters of it (`shown_output` in arithmo.evaluation.tir keeps a failure's
    error line inside that). A fence the program printed becomes PRINTED_FENCE, so that the block ends where the
    interpreter ended it (training finds the same span: `tir_output_spans`)."""
    text = text.rstrip("\n").replace("```", PRINTED_FENCE)
    if len(text) > MAX_TOOL_OUTPUT_CHARS:
        text = text[:MAX_TOOL_OUTPUT_CHARS] + f"\n[... {len(text) - MAX_TOOL_OUTPUT_CHARS} more characters]"
    return f"{OUTPUT_FENCE}{text}\n```\n"


def _fenced_blocks(text: str) -> list[tuple[str, str, int, int]]:
    """(language, code, start, end) of every closed fenced block, by one pass over the lines (linear time): an
    opening fence line ```lang (any indentation), a closing ``` line at the same or less indentation. The code is
    dedented by the opening fence's indentation (a block inside a list item runs as written)."""
    blocks, opened, position = [], None, 0
    for line in text.split("\n"):
        end = position + len(line)
        fence = _FENCE_LINE.fullmatch(line)
        if fence is not None:
            indent, lang = fence.group(1), fence.group(2).lower()
            if opened is None:
                opened = (lang, indent, end + 1)
            elif not lang and len(indent) <= len(opened[1]):
                lang0, indent0, body = opened
                code = text[body:position] if body <= position else ""
                if indent0:
                    code = "\n".join(line_[len(indent0):] if line_.startswith(indent0) else line_.lstrip(" \t")
                                     for line_ in code.split("\n"))
                blocks.append((lang0, code.replace("\r\n", "\n"), body, end))
                opened = None
        position = end + 1
    return blocks


def pending_code(text: str) -> str | None:
    """The code of the last python block (```python, ```py, ```python3 ... `TIR_CODE_LANGS`) when it is closed,
    nothing but space follows it, and no output block answers it yet: the block the interpreter runs next. None
    otherwise (the model went on to an answer, or the last block is of another language)."""
    blocks = _fenced_blocks(text)
    if not blocks:
        return None
    lang, code, _start, end = blocks[-1]
    if lang not in TIR_CODE_LANGS or text[end:].strip():
        return None
    return code
