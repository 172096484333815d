"""DataConfig: what a recipe YAML in `data_recipes/` holds.

A recipe lists its sources in priority order (the first source wins a duplicate), the benchmarks to
decontaminate against, the dedup thresholds and the transforms. Every key is typed and documented;
`python -m arithmo.data build --help` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from arithmo.config import ConfigError, field

# One per source schema (arithmo/data/adapters.py), then the generic formats other kits write
# (arithmo/data/formats.py): chat `messages`, alpaca, TRL prompt-completion.
Adapter = Literal["metamathqa", "mathinstruct", "lila", "dart_math", "openmath2", "numinamath", "numinamath_tir",
                  "gsm8k_train", "math_train", "openr1_math", "openmathreasoning", "s1k", "limo", "messages", "alpaca",
                  "prompt_completion"]


@dataclass
class SourceConfig:
    name: str = field("", help="name used in ids, the manifest and SFT records, e.g. 'metamathqa'")
    adapter: Adapter = field("metamathqa", help="which schema the rows follow")
    path: str | None = field(None, help="local .jsonl/.json/.parquet file (relative paths: to the recipe file)")
    hub: str | None = field(None, help="hub dataset id (or a local dataset folder) for datasets.load_dataset")
    config: str | None = field(None, help="hub config name, e.g. 'ood' for allenai/lila")
    configs: list[str] | None = field(
        None, help="several hub configs read one after another, instead of `config` (MATH train: one per "
                   "subject of EleutherAI/hendrycks_math)")
    splits: list[str] = field(
        default_factory=lambda: ["train"],
        help="hub splits to load (OpenMathInstruct-2: train_1M, train_2M, train_5M or train); for a local "
             "Lila file, the values of its `split` column to keep",
    )
    revision: str | None = field(
        None, help="hub dataset revision to read (commit sha, tag or branch); the manifest records the commit "
                   "loaded either way, so copying it here makes the build repeatable")
    style: Literal["cot", "pot"] | None = field(
        None, help="for the generic formats (messages, alpaca, prompt_completion): whether completions are "
                   "CoT text or PoT programs (default cot); the dataset adapters know their own")
    max_rows: int | None = field(None, help="read at most this many rows per split (for quick runs)")
    per_problem: Literal["one", "all"] | None = field(
        None, help="sources with several reasoning traces per problem: keep the first usable one (one) or every "
                   "one (all); defaults: openr1_math one (a problem's generations in one row), openmathreasoning "
                   "all (one row per solution; one keeps the first row of each problem)")

    def validate(self) -> None:
        if not self.name:
            raise ConfigError("sources.*.name: every source needs a name")
        if self.max_rows is not None and self.max_rows < 1:
            raise ConfigError(f"sources[{self.name}].max_rows: expected >= 1 (or null: all), got {self.max_rows}")
        if (self.path is None) == (self.hub is None):
            raise ConfigError(f"sources[{self.name}]: give exactly one of `path` or `hub`")
        if self.config is not None and self.configs is not None:
            raise ConfigError(f"sources[{self.name}]: give `config` or `configs`, not both")
        if self.path is not None and (self.configs or self.revision):
            raise ConfigError(f"sources[{self.name}]: `configs` and `revision` are for hub sources, not `path`")
        if self.adapter in ("gsm8k_train", "math_train") and self.hub is not None and "test" in self.splits:
            raise ConfigError(f"sources[{self.name}].splits: the {self.adapter} adapter reads training splits; "
                              "'test' is what evaluation scores (name it under decontaminate.benchmarks)")
        if self.per_problem is not None and self.adapter not in ("openr1_math", "openmathreasoning"):
            raise ConfigError(f"sources[{self.name}].per_problem: only the openr1_math and openmathreasoning "
                              f"adapters read several solutions per problem; the {self.adapter} adapter has one "
                              "solution per problem")
        if self.style is not None and self.adapter not in ("messages", "alpaca", "prompt_completion"):
            raise ConfigError(f"sources[{self.name}].style: the {self.adapter} adapter knows its style; `style` "
                              "is for the generic formats (messages, alpaca, prompt_completion)")


@dataclass
class BenchmarkConfig:
    name: str = field("", help="benchmark name recorded in the manifest, e.g. 'gsm8k_test'")
    benchmark: str | None = field(
        None, help="a benchmark arithmo knows (gsm8k, math, math500, svamp; file: EvalItem records): its hub id, "
                   "configs, split and question column come from arithmo.benchmarks; `path` reads a local file "
                   "in its schema instead")
    path: str | None = field(None, help="local file of test rows (relative paths: to the recipe file)")
    hub: str | None = field(None, help="hub dataset id, e.g. 'openai/gsm8k' (with `benchmark`: overrides its hub)")
    config: str | None = field(None, help="hub config, e.g. 'main' (with `benchmark`: one config instead of its own)")
    split: str = field("test", help="hub split")
    question_field: str | None = field(
        None, help="column with the question (without `benchmark`); default: the first of question/problem/"
                   "query/input present"
    )
    revision: str | None = field(None, help="hub revision of a custom hub set (without `benchmark`)")
    required: bool = field(True, help="fail when the benchmark cannot be loaded (false: record and skip)")

    def validate(self) -> None:
        from arithmo.benchmarks import NAMES

        if not self.name:
            raise ConfigError("decontaminate.benchmarks.*.name: every benchmark needs a name")
        where = f"decontaminate.benchmarks[{self.name}]"
        if self.benchmark is not None:
            if self.benchmark not in NAMES:
                raise ConfigError(f"{where}.benchmark: unknown benchmark {self.benchmark!r}; expected one of "
                                  f"{', '.join(NAMES)}")
            if self.path is not None and self.hub is not None:
                raise ConfigError(f"{where}: give at most one of `path` or `hub` with `benchmark`")
            if self.question_field is not None:
                raise ConfigError(f"{where}.question_field: `benchmark: {self.benchmark}` knows its question "
                                  "column; drop question_field (or drop `benchmark` for a custom file)")
            if self.revision is not None:
                raise ConfigError(f"{where}.revision: arithmo.benchmarks reads `benchmark: {self.benchmark}`; "
                                  "pin a revision on a custom hub set (hub + question_field) instead")
            if self.benchmark == "file" and self.path is None and self.hub is None:
                raise ConfigError(f"{where}: `benchmark: file` needs `path` (an EvalItem file)")
        elif (self.path is None) == (self.hub is None):
            raise ConfigError(f"{where}: give `benchmark`, or exactly one of `path` or `hub`")


@dataclass
class DecontamConfig:
    enabled: bool = field(True, help="drop training rows that overlap an evaluation set")
    # 10 words: DeepSeekMath's decontamination (Shao et al. 2024, sec. 2.1) removes any text sharing a
    # 10-gram with a benchmark. GPT-3's 13 (Brown et al. 2020, app. C) misses short math questions: a
    # GSM8K test question is ~46 words, and rephrasings keep shorter runs verbatim.
    ngram: int = field(10, help="word n-gram length for overlap with benchmark questions")
    benchmarks: list[BenchmarkConfig] = field(default_factory=list, help="evaluation sets to check against")
    near: bool = field(True, help="also drop questions whose word set nearly equals a benchmark question's")
    # Word-set Jaccard, measured 2026-11-29 on the rows beside the checkout (issue 14): distinct problems reach
    # 0.55 (GSM8K train 500 vs test 300) and 0.70 (MATH test 500 among themselves; one pair of diagram problems
    # differing in one coordinate reaches 0.83). Rewrites the 10-gram check misses: one word replaced in a MATH
    # problem (84 of 500 missed; median J 0.89), sentences swapped in a GSM8K question (6 of 300; J 1.0).
    near_threshold: float = field(0.8, help="word-set Jaccard at or above which a question is contaminated "
                                            "(when it also holds every number of the test question)")
    report_pairs: int = field(10, help="pairs shown per benchmark and table in contamination.md")

    def validate(self) -> None:
        if self.ngram < 1:  # an n-gram of no words matches nothing (and broke the overlap index)
            raise ConfigError(f"decontaminate.ngram: expected a word count >= 1, got {self.ngram}")
        if not 0.0 < self.near_threshold <= 1.0:
            raise ConfigError(f"decontaminate.near_threshold: expected a number in (0, 1], got {self.near_threshold}")
        if self.report_pairs < 0:
            raise ConfigError(f"decontaminate.report_pairs: expected >= 0, got {self.report_pairs}")


@dataclass
class DedupConfig:
    exact: bool = field(True, help="drop rows whose normalised question AND solution repeat an earlier row")
    near: bool = field(True, help="drop near-duplicate questions (MinHash/LSH) with a near-identical solution")
    threshold: float = field(0.85, help="question Jaccard similarity (word 3-grams) to count as near-duplicate")
    # A repeated question is kept when its solution differs enough (Arithmo kept repeated questions whose
    # answers differed; MetaMathQA's AnsAug rows are several sampled solutions of one question).
    solution_threshold: float = field(0.7, help="solution Jaccard at or above which a near-dup question is dropped")
    num_perm: int = field(128, help="MinHash permutations")
    bands: int = field(16, help="LSH bands; num_perm/bands rows per band (16x8 finds pairs above ~0.7)")

    def validate(self) -> None:
        for key in ("num_perm", "bands"):
            if getattr(self, key) < 1:
                raise ConfigError(f"dedup.{key}: expected >= 1, got {getattr(self, key)}")
        if self.num_perm % self.bands:
            raise ConfigError(f"dedup.bands: {self.bands} must divide dedup.num_perm ({self.num_perm})")
        for key in ("threshold", "solution_threshold"):
            if not 0.0 < getattr(self, key) <= 1.0:
                raise ConfigError(f"dedup.{key}: expected a number in (0, 1], got {getattr(self, key)}")


@dataclass
class TransformConfig:
    answer_format: bool = field(True, help="CoT completions end with 'The answer is: X' (#### X is folded in)")
    require_answer: bool = field(True, help="drop CoT rows with no final answer to put in that line")
    # Arithmo lowercased a share of questions so the model copes with users who type in lower case.
    lowercase_share: float = field(0.3, help="share of questions lowercased (0 disables)")
    pot_hints: bool = field(True, help="give each PoT question one hint phrase; replace fixed triggers")
    ensure_print: bool = field(True, help="append print(answer) to PoT programs that print nothing")
    verify_pot: bool = field(False, help="run PoT programs in the sandbox; drop failures and wrong answers")
    verify_tir: bool = field(True, help="re-run TIR rows' code blocks in the sandbox; drop rows whose recorded "
                                        "outputs the code does not reproduce")
    tir_instruction: bool = field(True, help="end TIR questions with the instruction style=tir evaluation uses")
    program_timeout_s: float = field(5.0, help="per-program time limit in seconds when verifying")
    verify_workers: int | None = field(None, help="parallel programs when verifying (default: CPU count)")

    def validate(self) -> None:
        if not 0.0 <= self.lowercase_share <= 1.0:
            raise ConfigError(f"transforms.lowercase_share: expected 0..1, got {self.lowercase_share}")
        if self.program_timeout_s <= 0:
            raise ConfigError(f"transforms.program_timeout_s: expected > 0 seconds, got {self.program_timeout_s}")
        if self.verify_workers is not None and self.verify_workers < 1:
            raise ConfigError(f"transforms.verify_workers: expected >= 1 (or null), got {self.verify_workers}")


@dataclass
class DataConfig:
    name: str = field("recipe", help="recipe name")
    seed: int = field(42, help="seed for lowercasing, hint choice, shuffling and the val split")
    sources: list[SourceConfig] = field(default_factory=list, help="sources in priority order")
    decontaminate: DecontamConfig = field(default_factory=DecontamConfig, help="decontamination")
    dedup: DedupConfig = field(default_factory=DedupConfig, help="deduplication")
    transforms: TransformConfig = field(default_factory=TransformConfig, help="transforms")
    val_size: float = field(0.01, help="validation rows: a share (<1) or a count (>=1)")
    tokenizer: str | None = field(
        None, help="a tokenizer named as models are (hub id, local folder, .gguf file or embedded alias such as "
                   "smollm2-135m-instruct): the manifest then records token-length percentiles per source "
                   "(prompt, completion, total; reasoning traces apart), to choose max_seq_length before training")
    base_dir: str = field("", help="folder relative paths resolve against (set to the recipe's folder)")

    def validate(self) -> None:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"sources: names must be unique, got {names}")
        if self.val_size < 0:
            raise ConfigError(f"val_size: expected >= 0, got {self.val_size}")
