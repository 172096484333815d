"""Find the answer in a model's completion: the final answer line, `\\boxed{}`, GSM8K `####`, a program.

Strict mode reads only explicit answer markers, so a completion that never commits to an answer gets
None (counted as "no answer" in metrics). Flexible mode falls back to the last number in the text,
the lm-evaluation-harness "flexible-extract" idea for GSM8K; metrics report both separately.

Markers (the one that comes last in the text wins):
- "The answer is: X" / "The (final) answer is X." (MetaMath, Minerva, MathInstruct);
- "Answer: X" / "ANSWER: X" / "**Final Answer:** X" at the start of a line or sentence (the format
  of chat models and of the OpenAI simple-evals MATH prompt, "Answer: $ANSWER"); when X is a sentence,
  its value: "Final Answer: The smallest value is 9." is 9;
- `\\boxed{X}`, `\\fbox{X}`; GSM8K's `#### X`; R1-style `<answer>X</answer>`; the Chinese `答案是 X。`,
  `答案：X`, `答：...X...`; a completion that is nothing but a value (`= 7` after Math401's `5+2=`).
A reasoning model's `<think>...</think>` block is never searched (an unfinished one is no answer). Every
search is linear in the text: boxes in one pass over the braces, markers from the end of the text.
Markdown bold around the value (`**42**`) is not part of it. A program's printout is read by
`answer_from_output` (Python values: arithmo.grading.pyoutput).
"""

from __future__ import annotations

import ast
import re
from typing import Literal

from arithmo.grading.latex_text import find_braced, split_top_level
from arithmo.grading.normalize import fold_width, normalize_answer
from arithmo.grading.pyoutput import NotReadable, last_printed_value, read_python_value

# "The answer is: X" (MetaMath / Arithmo final line, Yu et al. 2023) and "The answer is X." (MathInstruct
# CoT rows, Minerva's "The final answer is X"). Case-insensitive; the value runs to the end of the line.
# The value stops before another marker on the same line: "The answer is 5. Actually, the final answer is 6." is 6
# (the last marker wins, issue 25 review; the rest used to swallow the correction). One lookahead per character
# of a fixed length: linear.
_NEXT_MARKER = r"(?:(?!\banswer(?:\s+is\b|(?:\*\*|__)?[ \t]*:))[^\n])*"
_ANSWER_IS = re.compile(r"\b(?:the\s+)?(?:final\s+)?answer\s+is\b[ \t]*(?P<colon>:)?[ \t]*(?P<rest>" + _NEXT_MARKER + ")",
                        re.IGNORECASE)
# A sentence ends at a full stop followed by space ("5. I hope it is correct."): 2.5 is not cut.
_SENTENCE_END = re.compile(r"\.\s+(?=\S)")
_NEXT_SENTENCE = re.compile(r"\.\s+(?=[A-Z][a-z])")
# Without a colon the value must look like an answer, so "The answer is not obvious" is not one: a
# digit or math character, or one word ("C", "odd", "Friday").
_MATH_CHARACTER = re.compile(r"[\d\\^=+*/()\[\]{}<>|]")
_ONE_WORD = re.compile(r"^[A-Za-z]+$")
# Three words in a row (outside LaTeX commands) are a sentence, not an answer ("5 square feet" is two).
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}[ ,]+[A-Za-z]{2,}[ ,]+[A-Za-z]{2,}")
# "Answer: X" at the start of a line (after Markdown marks: "**Final Answer:** X", "## Answer: X") or of
# a sentence; "answer:" inside a sentence ("let us check the answer: 2+2") is not a marker.
_ANSWER_COLON = re.compile(r"\b(?:(?:the|my|our)\s+)?(?:final\s+)?answer(?:\*\*|__)?[ \t]*:(?:\*\*|__)?[ \t]*"
                           r"(?P<rest>" + _NEXT_MARKER + ")", re.IGNORECASE)
# ... or after a label that ends in a colon ("Correction: Answer: 6")
_LINE_START = re.compile(r"(?:^|\n)[ \t>#*_-]*$|[.!?:][ \t]+(?:\*\*|__)?$")
# In a sentence after "Answer:", the value follows its verb: "The smallest value is 9." (first verb)
_VALUE_AFTER_VERB = re.compile(r"\b(?:is|are|equals|was|be)\b\s*:?\s*(?P<value>.+)$", re.IGNORECASE)
_REASON = re.compile(r",\s+(?=[A-Za-z]{2,})|\s+(?:because|since|as|which|when|so|for|if)\b", re.IGNORECASE)
# A value that opens with two words is a sentence ("Sarah has 15 apples"), not "15 apples" or "x = 5".
_SENTENCE_START = re.compile(r"^[A-Za-z]{2,}[ \t]+[A-Za-z]{2,}\b")
# A new few-shot question after the answer (see _cut_run_on).
_RUN_ON = re.compile(r"\n[ \t]*(?:\*\*)?(?:Question|Problem|Q)[ \t]*\d*[ \t]*(?:\*\*)?:", re.IGNORECASE)
# Chinese answer markers: MGSM zh's exemplars end "答案是 18。" (Shi et al. 2022, the "Answer" prefix of the
# zh split); "答案为", "最终答案：" and a school answer line "答：还剩7个。" are the same marker.
_ZH_ANSWER = re.compile(r"(?:最终)?答案(?:应该|应)?(?:(?:是|为)[ \t]*[:：]?|[:：])|(?:^|\n)[ \t]*答[ \t]*[:：]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# A comma not followed by a digit ends the value too: "答案是 18，因为…" is 18 (1,000 and the list 1, 2 keep theirs).
_ZH_SENTENCE_END = re.compile(r"[。；;！!？?]|\.(?=\s|$)|,(?=\s*(?:[^\d\s]|$))")
_ZH_NEGATIVE = re.compile(r"^负\s*(?=\d)")  # 负5 is -5 (issue 25 review)
# R1-style answer tags (DeepSeek-R1's template: "<think> reasoning </think> <answer> answer </answer>").
_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
# A completion that is nothing but a value commits to it: an arithmetic prompt "5+2=" continued with "7" (Math401).
_LONE_VALUE = re.compile(r"^\s*=?\s*\$?\s*(?P<value>[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:/\d+)?\s*%?)\s*\$?\s*\.?\s*$")
# GSM8K's final line "#### 72" (Cobbe et al. 2021).
_HASH_LINE = re.compile(r"####[ \t]*(?P<rest>[^\n]*)")
_BOXED = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
# The last number: optional sign (not a subtraction: "5-3" ends in 3; U+2212 is a minus too), thousands
# groups (with commas or spaces: "12 000 people" is 12000), a mixed number ("3 1/4 cups"), decimals, a/b; a LaTeX fraction or root is ONE number, so "\\frac{3}{4}" is not 4; an exponent or
# subscript is not a number of its own ("25 cm^2" ends in 25, "2112_6" in 2112).
_MINUS = "-\u2212\u2013\ufe63\uff0d"  # a sign only when attached to its digits: "2 \u2013 3" is no minus
_NUMBER = re.compile(r"(?<![\^_\d.])(?<!\^\{)(?<!_\{)(?:(?<![\w)\]}])[" + _MINUS + r"])?(?:"
                     r"\\[dtc]?frac\s*\{[^{}$]*\}\s*\{[^{}$]*\}|\\[dtc]?frac\s*\d\s*\d"  # \frac{3}{4}, \frac34
                     r"|(?:\d+)?\\sqrt\s*\{[^{}$]*\}"                                 # 2\sqrt{3}
                     r"|\d+[ \t]+\d+/\d+(?![\d/.])"                                # 3 1/4: a mixed number
                     r"|\d{1,3}(?:[ \t]\d{3})+(?![\d/.,])"                           # 12 000: digit groups
                     r"|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?|(?<!\d)\.\d+)")

# Tokens a chat model emits to end its turn; anything after one is not part of the completion.
CHAT_END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>", "<|end_of_text|>")
# The info string after the language starts with another character, so the two never compete, and holds no
# backtick (CommonMark 0.31 sec. 4.5), so a failed fence scans to the next backtick only (linear).
_FENCE = re.compile(r"```[ \t]*(?P<lang>[\w+.-]*)(?:[^\w+.\n`-][^\n`]*)?\n(?P<body>.*?)(?:```|\Z)", re.DOTALL)
# A program longer than this is a runaway generation, not one to run (and parsing stays cheap).
MAX_PROGRAM_CHARS = 16_000
_CODE_LANGS = {"", "python", "py", "python3", "py3", "ipython"}
# A first line that only a program starts with (used when a program does not parse, e.g. truncated).
_CODE_START = re.compile(r"^(?:import\s+\w|from\s+[\w.]+\s+import\s|def\s+\w+\s*\(|class\s+\w|print\s*\("
                         r"|for\s+\w+\s+in\s|while\s|if\s.*:\s*$|[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*\s*=[^=])")


def _clean_value(value: str) -> str | None:
    """Trim what surrounds an answer on its line: `\\boxed{}`, `$`, Markdown bold `**`, a closing
    full stop ("is 5.")."""
    boxed = _last_boxed(value)
    if boxed is not None:
        value = boxed[1]
    for _ in range(3):  # "$5$.", "5.$", "**$42$**.": full stop, bold and math delimiters in any order
        value = value.strip().rstrip(".").strip().strip("*_").strip().strip("$")
    if "=" in value:
        # "48 + 24 = 72" (a computation ending in its result) is 72; "x = 5" keeps its variable
        left, right = value.rsplit("=", 1)
        if right.strip() and not re.search(r"[A-Za-z]", re.sub(r"\\[a-zA-Z]+", "", left)) and "<" not in left + right \
                and ">" not in left + right:
            value = right.strip().strip("$").strip()
    return value.strip() or None


def _answer_colon_candidates(text: str) -> list[tuple[int, str]]:
    found = []
    for match in _from_end(_ANSWER_COLON, text):
        if not _LINE_START.search(text[max(0, match.start() - 40): match.start()]):
            continue  # mid-sentence "the answer: ..." is not a marker
        rest = match.group("rest")
        if not rest.strip(" \t*_$"):  # "**Final Answer:**" alone: the value is on the next line
            start = match.end()
            while start < len(text) and text[start] == "\n":
                start += 1
            end = text.find("\n", start)
            rest = text[start: end if end != -1 else len(text)]
        sentences = [part for part in _SENTENCE_END.split(rest) if part.strip()]
        value = _clean_value(sentences[0]) if sentences else None
        if value is not None and (_PROSE.search(value) or _SENTENCE_START.match(value)):
            if any(re.search(r"\d", sentence) for sentence in sentences[1:]):
                continue  # "Answer: Natalia sold 48/2 = 24 clips. Then ... 72": reasoning, not an answer line
            verb = _VALUE_AFTER_VERB.search(value)
            # "... is 9, because ..." / "is 9 since ...": the value ends before the reason
            value = _clean_value(_REASON.split(verb.group("value"), maxsplit=1)[0]) if verb else _last_number(value)
        if value is not None:
            return [(match.start(), value)]
    return found


def _answer_is_candidates(text: str) -> list[tuple[int, str]]:
    found = []
    for match in _from_end(_ANSWER_IS, text):
        rest = match.group("rest")
        if match.group("colon"):
            # after a colon the line is the answer, up to a trailing sentence ("I hope it is correct.")
            rest = _NEXT_SENTENCE.split(rest, maxsplit=1)[0]
        else:
            rest = _SENTENCE_END.split(rest, maxsplit=1)[0]
        # "The answer is 18, since 3*6=18." is 18: a reason after the value is not part of it
        reason_split = _REASON.split(rest, maxsplit=1)
        value = _clean_value(reason_split[0])
        if value is None:
            continue
        if len(reason_split) > 1 and not _MATH_CHARACTER.search(value) and _PROSE.search(rest):
            continue  # "The final answer is positive, because two of ..." explains: no value
        if not match.group("colon") and _PROSE.search(value):
            continue  # "The final answer is positive, because two of the three numbers ..." explains
        if not match.group("colon") and not _MATH_CHARACTER.search(value):
            # a word answer without a colon only where the phrase opens a sentence ("The answer is C."),
            # so "we check whether the answer is correct" is not an answer
            before = text[max(0, match.start() - 80): match.start()].rstrip(" \t")
            if not (_ONE_WORD.match(value) and (before == "" or before[-1] in "\n.!?:")):
                continue
        return [(match.start(), value)]
    return found


def _closing_braces(text: str) -> dict[int, int]:
    """{index of a `{`: index of the `}` that closes it} for every balanced pair, in one pass (linear)."""
    closes, stack = {}, []
    for match in _BRACE.finditer(text):
        if match.group(0) == "{":
            stack.append(match.start())
        elif stack:
            closes[stack.pop()] = match.start()
    return closes


_BRACE = re.compile(r"[{}]")


def _boxed_spans(text: str) -> list[tuple[int, str]]:
    """(position, content) of every complete `\\boxed{...}` / `\\boxed X` / `\\fbox{...}` in `text`, in order of
    position. One pass over the braces: 10,900 unclosed `\\fbox{` cost no more than one (a scan per box was
    quadratic). A box cut off mid-answer (the generation hit its length limit) is no answer."""
    found, closes, inside_until = [], None, -1
    for match in _BOXED.finditer(text):
        if match.start() < inside_until:
            continue  # a box inside a box (\boxed{\frac{1}{\boxed{2}}}) is part of the outer answer (issue 25 review)
        after = match.end()
        while after < len(text) and text[after] in " \t":
            after += 1
        if after < len(text) and text[after] == "{":
            if closes is None:
                closes = _closing_braces(text)
            close = closes.get(after)
            if close is None:
                continue
            content = text[after + 1: close].strip()
            inside_until = close
        else:
            token = _BOXED_TOKEN.match(text, after)  # `\boxed 5`: the argument is one token
            if after == match.end() or token is None:
                continue
            content = token.group(0).rstrip(".,")
        if content:
            found.append((match.start(), content))
    return found


_BOXED_TOKEN = re.compile(r"[^\s$]+")


def _last_boxed(text: str) -> tuple[int, str] | None:
    """(position, content) of the last complete box in `text` (see `_boxed_spans`)."""
    spans = _boxed_spans(text)
    return spans[-1] if spans else None


def _zh_candidates(text: str) -> list[tuple[int, str]]:
    """"答案是 18。" -> 18; a sentence after the marker ("答：还剩7个。") gives its last number."""
    found = []
    for match in _from_end(_ZH_ANSWER, text):
        end = text.find("\n", match.end(), match.end() + _MAX_VALUE_CHARS)
        rest = text[match.end(): end if end != -1 else match.end() + _MAX_VALUE_CHARS]
        boxed = _last_boxed(rest)
        value = boxed[1] if boxed else _ZH_SENTENCE_END.split(rest.strip(), maxsplit=1)[0]
        value = _clean_value(_ZH_NEGATIVE.sub("-", value.strip())) if value.strip() else None
        if value is not None and _CJK.search(value) and not re.match(r"^[-\d.,/\\{}a-z]+[ \t]*[\u4e00-\u9fff]+$", value):
            value = _last_number(value)  # "小明有18个苹果": the number in the sentence
        if value is not None:
            return [(match.start(), value)]
    return found


_MAX_VALUE_CHARS = 400  # an answer line's value is short; a marker's rest is read no further (linear)


def _answer_tag_candidate(text: str) -> list[tuple[int, str]]:
    """The last complete `<answer>...</answer>`: its own marker when it holds one (`\\boxed{5}`), else its text
    when that is one line (a whole solution inside the tags has no answer of its own)."""
    close = text.rfind(_ANSWER_CLOSE)
    start = text.rfind(_ANSWER_OPEN, 0, close) if close != -1 else -1
    if start == -1:
        return []
    content = text[start + len(_ANSWER_OPEN): close].strip()
    inner = extract_answer(content, mode="strict") if content else None
    if inner is None and content and "\n" not in content:
        inner = _clean_value(content)
    return [(start, inner)] if inner is not None else []


def _after_think(text: str) -> str | None:
    """The text after the reasoning block of a reasoning model (`<think> ... </think> answer`): the block is not
    searched for an answer; an unfinished block (`<think>` without `</think>`: cut off while thinking) is no
    answer (None). A completion whose `<think>` was in the prompt holds only `</think>`."""
    close = text.rfind(_THINK_CLOSE)
    if close != -1:
        return text[close + len(_THINK_CLOSE):]
    return None if _THINK_OPEN in text else text


def _hash_candidates(text: str) -> list[tuple[int, str]]:
    found = []
    for match in _from_end(_HASH_LINE, text):
        value = _clean_value(match.group("rest"))
        if value is not None:
            return [(match.start(), value)]
    return found


_MAX_NUMBER_WINDOW = 8192  # characters searched back from the last digit for the last number


def _last_number(text: str) -> str | None:
    """The last number of `text`, searched in windows from the end that double in size (the number regex is
    costly per character: a long text without a number late in it would cost its whole length every time)."""
    # every number holds a digit, a \\frac or a \\sqrt: nothing after the last of those is searched
    last = max(max(text.rfind(digit) for digit in "0123456789"), text.rfind("frac"), text.rfind("sqrt"))
    if last == -1:
        return None
    end = min(len(text), last + 256)
    size = 2048
    while True:
        start = max(0, end - size)
        matches = list(_NUMBER.finditer(text, start, end))
        # a match at the window's edge may be the tail of a longer number: look further back -- up to
        # _MAX_NUMBER_WINDOW: a "number" that runs on for kilobytes (a chain of \frac) is no answer, and reading
        # further would cost the whole text
        if matches and (matches[-1].start() > start or start == 0 or size >= _MAX_NUMBER_WINDOW):
            return re.sub(f"^[{_MINUS}]", "-", matches[-1].group(0))
        if start == 0 or size >= _MAX_NUMBER_WINDOW:
            return None
        size *= 4


_MAX_COMBINED_BOXES = 64  # boxes read together as one list answer (gold with several answers)
_MAX_MARKER_TRIES = 16  # markers tried from the end of a text; only the last one that holds a value counts


def _from_end(pattern: re.Pattern, text: str) -> list[re.Match]:
    """The matches of `pattern` in `text`, last first, at most _MAX_MARKER_TRIES of them: the last marker with a
    value wins, so earlier ones are read only while later ones hold none (linear, however many markers)."""
    size = 4096
    while True:  # windows from the end that grow fourfold: a text full of markers costs its tail only
        start = max(0, len(text) - size)
        matches = list(pattern.finditer(text, start))
        if len(matches) >= _MAX_MARKER_TRIES or start == 0:
            return matches[-_MAX_MARKER_TRIES:][::-1]
        size *= 4


def _all_boxed(text: str) -> list[str]:
    """The contents of every complete `\\boxed{}` in `text`, in order, each once (by normalized text; the
    last copy of a repeated answer keeps its place)."""
    found, seen = [], set()
    spans = _boxed_spans(text)
    if len(spans) > _MAX_COMBINED_BOXES:
        return []  # a runaway list of boxes is no answer list: the last box answers alone
    for _, content in reversed(spans):
        key = normalize_answer(content)
        if key not in seen:
            seen.add(key)
            found.insert(0, content)
    return found


def _answer_count(answer: str) -> int:
    """How many answers `answer` lists: the items of a bare list or a set (`2, 3`, `\\{1,2\\}`,
    `2 \\pm \\sqrt{3}`), else 1 (a tuple or interval `(1, 2)` is ONE answer)."""
    text = normalize_answer(answer)
    if text.startswith("\\{") and text.endswith("\\}"):
        return len(split_top_level(text[2:-2], ","))
    return len(split_top_level(text, ","))


def extract_answer(text: str, mode: Literal["strict", "flexible"] = "strict", *, gold: str | None = None) -> str | None:
    """The final answer stated in `text`, or None.

    Strict: the explicit marker that comes last in the text (module doc): 'The answer is: X', 'Answer:
    X', `\\boxed{X}` (nested braces; also `\\boxed X` and `\\fbox{X}`), GSM8K's `#### X`.
    Flexible: the same, else the last number in the text (a LaTeX fraction or root counts as one number).
    Text after a chat end token is ignored, and so is a reasoning model's `<think>` block (an unfinished one
    is no answer, in both modes); `<answer>...</answer>` tags and the Chinese markers `答案是 X。` / `答：` are
    markers. Full-width digits and Chinese punctuation read as their ASCII forms.
    `gold`: when given and it lists several answers (`2, 3`, a set, `\\pm`) while the last box holds
    fewer, every `\\boxed{}` of the completion together is the answer ("x = \\boxed{2} or x = \\boxed{3}"
    is "2, 3"), as a human grader reads it; otherwise the last box, as without `gold`.
    Raises ValueError for another mode and TypeError when `text` is not a str.
    """
    if mode not in ("strict", "flexible"):
        raise ValueError(f"extract_answer mode must be 'strict' or 'flexible', got {mode!r}")
    if not isinstance(text, str):
        raise TypeError(f"extract_answer expects a str completion, got {type(text).__name__}")
    text = _after_think(fold_width(_strip_chat_end(text)))
    if text is None:
        return None
    text = _cut_run_on(text)
    candidates = _hash_candidates(text)
    if "answer" in text.lower():  # the two regexes below try every word: skip them when they cannot match
        candidates += _answer_is_candidates(text) + _answer_colon_candidates(text) + _answer_tag_candidate(text)
    if "答" in text:
        candidates += _zh_candidates(text)
    boxed = _last_boxed(text)
    if boxed is not None:
        candidates.append(boxed)
    if not candidates:
        # the whole completion is one number ("= 0" after Math401's "5+2="), or all that follows its last code
        # or output block is (a TIR solution ending "```output\n7\n```\n= 7")
        tail_start = text.rfind("```") + 3 if "```" in text else 0
        if len(text) - tail_start <= 80 and (lone := _LONE_VALUE.match(text[tail_start:])):
            candidates.append((tail_start, lone.group("value")))
    if candidates:
        winner = max(candidates, key=lambda found: found[0])
        if gold is not None and winner == boxed:
            several = _answer_count(gold)
            if several > 1 and _answer_count(boxed[1]) < several:
                boxes = _all_boxed(text)
                if len(boxes) > 1:
                    return ", ".join(boxes)
        return winner[1]
    if mode == "strict":
        return None
    return _last_number(text)


def _cut_run_on(text: str) -> str:
    """`text` up to a new "Question:" / "Problem:" line that follows an answer marker: a base model
    continuing its few-shot prompt (lm-evaluation-harness GSM8K: "Question: ...\nAnswer: ...") writes
    the next question, and its "Answer:" is not this completion's answer."""
    if not _RUN_ON.search(text):
        return text
    first_marker = min((match.start() for match in (pattern.search(text) for pattern in (
        _BOXED, _ANSWER_IS, _HASH_LINE, _ANSWER_COLON, _ZH_ANSWER)) if match), default=None)
    if first_marker is None:
        return text
    # the first new question that comes after some marker (one search per pattern: linear)
    match = _RUN_ON.search(text, first_marker)
    return text[: match.start()] if match else text


def _strip_chat_end(completion: str) -> str:
    cut = len(completion)
    for token in CHAT_END_TOKENS:
        index = completion.find(token)
        if index != -1:
            cut = min(cut, index)
    return completion[:cut]


def _is_program(code: str) -> bool:
    """Whether `code` is a program rather than prose or a lone value."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # ValueError: a NUL byte; the others: nesting
        first = next((line.strip() for line in code.splitlines() if line.strip()), "")
        return bool(_CODE_START.match(first))
    lone_value = (ast.Constant, ast.Name, ast.UnaryOp, ast.BinOp)
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, lone_value)) for node in tree.body)


def extract_program(completion: str) -> str | None:
    """The Python program in a program-of-thought completion, or None when it holds no code.

    The first ```python (or unlabelled) fenced block that is a program wins; an unclosed fence (the
    generation ran out of tokens) runs to the end. Without fences, the completion itself when it is
    code, after dropping leading prose lines. Text after a chat end token (`<|im_end|>`) is dropped. A program
    longer than MAX_PROGRAM_CHARS is not taken (a runaway generation).
    """
    if not isinstance(completion, str):
        raise TypeError(f"extract_program expects a str completion, got {type(completion).__name__}")
    text = _strip_chat_end(completion)
    if "```" in text:
        for match in _FENCE.finditer(text):
            body = match.group("body").strip("\n")
            if match.group("lang").lower() in _CODE_LANGS and body.strip() and len(body) <= MAX_PROGRAM_CHARS \
                    and _is_program(body):
                return body.rstrip()
        return None
    if len(text.strip("\n")) > MAX_PROGRAM_CHARS:
        return None
    lines = text.strip("\n").splitlines()
    for start, line in enumerate(lines):
        if start > 0 and not _CODE_START.match(line.strip()):
            continue  # after leading prose, the program starts on a line only code starts with
        rest = "\n".join(lines[start:]).rstrip()
        if rest.strip() and _is_program(rest):
            return rest
    return None


# A printed label before the value: "Total: 42", "x = 5", "The total cost is: 42" (words, no operators).
_PRINTED_LABEL = re.compile(r"^[A-Za-z_][\w ]{0,40}?\s*(?::|(?<![<>!=])=(?!=))\s*(?P<value>\S.*)$")
_PRINTED_TAIL = re.compile(r"\b(?:is|are|equals|be)\s*:?\s+(?P<value>[^\s].*?)\.?$", re.IGNORECASE)
_NO_VALUE = {"None", "nan", "NaN", "[]", "set()", "EmptySet", "()", "{}"}


def answer_from_output(stdout: str | None) -> str | None:
    """The answer a program printed, as answer text; None when it printed nothing (or `None`, `nan`).

    The last value printed (its last non-empty line, or the lines of a numpy matrix printed over
    several) is read as a Python value first: `[5]` is 5, `[2, 3]` the list 2, 3, `[np.float64(18.0)]`
    18.0, numpy's `[3. 2.]` the list 3.0, 2.0, `(1+3j)` and sympy's `1 + 3*I` are 1+3i (rules in
    arithmo.grading.pyoutput; the text is parsed, never evaluated). Otherwise the line is text: an
    answer marker in it ("The answer is 5") is used, a label before the value ("Total: 42") dropped,
    and the rest (LaTeX a program printed, "42 apples") goes to the normalizer as it is.
    """
    if stdout is None:
        return None
    if not isinstance(stdout, str):
        raise TypeError(f"answer_from_output expects the program's stdout as a str, got {type(stdout).__name__}")
    printed = last_printed_value(stdout)
    if printed is None or printed in _NO_VALUE:
        return None
    try:
        return read_python_value(printed)
    except NotReadable:
        pass
    line = printed.splitlines()[-1].strip()
    marked = extract_answer(line, mode="strict")
    if marked is not None:
        return marked
    tail = _PRINTED_TAIL.search(line)
    if tail:  # "The roots are [2, 3]", "The total is 42 dollars": a sentence ending in its value
        try:
            return read_python_value(tail.group("value"))
        except NotReadable:
            if re.search(r"\d", tail.group("value")):
                return tail.group("value").strip()
    label = _PRINTED_LABEL.match(line)
    if label and "=" not in label.group("value"):  # "x = 3, y = 4" stays whole: the normalizer pairs it
        try:
            return read_python_value(label.group("value"))
        except NotReadable:
            return label.group("value").strip()
    return line
