"""The real hub schemas of every dataset arithmo names, transcribed from each dataset's card.

Each entry: the card's address, the configs (None: the dataset has only its default config), the splits and
the columns. `tests/test_hub_schemas.py` checks every hub id, config, split and column that a recipe, preset
or loader names against this table, so a wrong config name fails CI instead of a user's build.
Transcribed 2026-11-29.
"""

HUB_SCHEMAS = {
    # https://huggingface.co/datasets/openai/gsm8k : configs main and socratic; train 7,473, test 1,319
    "openai/gsm8k": {"configs": ("main", "socratic"), "splits": ("train", "test"),
                     "columns": ("question", "answer")},
    # https://huggingface.co/datasets/EleutherAI/hendrycks_math : one config per subject (no "all"); the
    # 12,500 MATH problems, train 7,500 / test 5,000
    "EleutherAI/hendrycks_math": {
        "configs": ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                    "prealgebra", "precalculus"),
        "splits": ("train", "test"), "columns": ("problem", "level", "type", "solution")},
    # https://huggingface.co/datasets/HuggingFaceH4/MATH-500 : default config, test only (500 rows)
    "HuggingFaceH4/MATH-500": {"configs": None, "splits": ("test",),
                               "columns": ("problem", "solution", "answer", "subject", "level", "unique_id")},
    # https://huggingface.co/datasets/ChilleD/SVAMP : default config, train 700 / test 300
    "ChilleD/SVAMP": {"configs": None, "splits": ("train", "test"),
                      "columns": ("ID", "Body", "Question", "Equation", "Answer", "Type", "question_concat")},
    # https://huggingface.co/datasets/meta-math/MetaMathQA : default config, train 395K
    "meta-math/MetaMathQA": {"configs": None, "splits": ("train",),
                             "columns": ("type", "query", "original_question", "response")},
    # https://huggingface.co/datasets/TIGER-Lab/MathInstruct : default config (MathInstruct.json), train 262K
    "TIGER-Lab/MathInstruct": {"configs": None, "splits": ("train",), "columns": ("source", "output", "instruction")},
    # https://huggingface.co/datasets/allenai/lila : configs iid and ood (the mixes) plus one per task (not
    # listed: arithmo names only the mixes); train / validation / test
    "allenai/lila": {"configs": ("iid", "ood"), "splits": ("train", "validation", "test"),
                     "columns": ("input", "output_program", "output_answer", "split", "dataset")},
    # https://huggingface.co/datasets/madrylab/gsm8k-platinum : config main, test 1,209
    "madrylab/gsm8k-platinum": {"configs": ("main",), "splits": ("test",),
                                "columns": ("question", "answer", "cleaning_status")},
    # https://huggingface.co/datasets/juletxara/mgsm : one config per language (bn de en es fr ja ru sw te th zh);
    # train 8 / test 250 each
    "juletxara/mgsm": {"configs": ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"),
                       "splits": ("train", "test"),
                       "columns": ("question", "answer", "answer_number", "equation_solution")},
    # https://huggingface.co/datasets/weitianwen/cmath : cmath_dev.jsonl (600) and cmath_test.jsonl (1,098), read
    # by datasets as the validation and test splits
    "weitianwen/cmath": {"configs": None, "splits": ("validation", "test"),
                         "columns": ("id", "grade", "reasoning_step", "num_digits", "question", "golden")},
    # https://huggingface.co/datasets/hkust-nlp/dart-math-hard : default config, train 585,392 (dataset_info),
    # features query, response; MIT
    "hkust-nlp/dart-math-hard": {"configs": None, "splits": ("train",), "columns": ("query", "response")},
    # https://huggingface.co/datasets/hkust-nlp/dart-math-uniform : default config, train 590,705 (dataset_info
    # as first uploaded; the card text says ~591k), features query, response; MIT
    "hkust-nlp/dart-math-uniform": {"configs": None, "splits": ("train",), "columns": ("query", "response")},
    # https://huggingface.co/datasets/nvidia/OpenMathInstruct-2 : default config; split train (~14M) and the
    # "fair-downsampled" train_1M, train_2M, train_5M; fields problem, generated_solution, expected_answer,
    # problem_source; CC BY 4.0
    "nvidia/OpenMathInstruct-2": {"configs": None, "splits": ("train", "train_1M", "train_2M", "train_5M"),
                                  "columns": ("problem", "generated_solution", "expected_answer",
                                              "problem_source")},
    # https://huggingface.co/datasets/AI-MO/NuminaMath-CoT : default config, train 859,494 / test 100; features
    # source, problem, solution, messages (list of {content, role}); licence cc-by-nc-4.0 at release (Jul 2024),
    # apache-2.0 on the card from Jul 19 2024 on
    "AI-MO/NuminaMath-CoT": {"configs": None, "splits": ("train", "test"),
                             "columns": ("source", "problem", "solution", "messages")},
    # https://huggingface.co/datasets/AI-MO/NuminaMath-TIR : default config, train 72,441 / test 99; `messages`
    # repeats problem and solution as a user/assistant pair
    "AI-MO/NuminaMath-TIR": {"configs": None, "splits": ("train", "test"),
                             "columns": ("problem", "solution", "messages")},
    # ---- issue 26: 2026's evaluation sets (transcribed 2026-12-06) ----
    # https://huggingface.co/datasets/HuggingFaceH4/aime_2024 : default config, one split `train` (30 rows: AIME 2024
    # I and II); features id (int64), problem, solution, answer (string), url, year
    "HuggingFaceH4/aime_2024": {"configs": None, "splits": ("train",),
                                "columns": ("id", "problem", "solution", "answer", "url", "year")},
    # https://huggingface.co/datasets/opencompass/AIME2025 : configs AIME2025-I (aime2025-I.jsonl) and AIME2025-II
    # (aime2025-II.jsonl), split test in each (15 rows); fields question, answer
    "opencompass/AIME2025": {"configs": ("AIME2025-I", "AIME2025-II"), "splits": ("test",),
                             "columns": ("question", "answer")},
    # https://huggingface.co/datasets/math-ai/amc23 : default config, split test (40 rows, AMC 12 2023); fields id,
    # question, answer (a float, 27.0), url (the AoPS wiki page)
    "math-ai/amc23": {"configs": None, "splits": ("test",), "columns": ("id", "question", "answer", "url")},
    # https://huggingface.co/datasets/Hothan/OlympiadBench : one config per subset, <type>_<modality>_<subject>_<lang>_
    # <source> (OE/TP: open-ended/theorem proving, TO/MM: text-only/multimodal, maths/physics, en/zh, COMP/CEE);
    # only the open-ended text-only maths configs are listed. One split `train`. Fields: id, question, solution
    # (list), final_answer (list), context, image_1..image_5, modality, difficulty, is_multiple_answer, unit,
    # answer_type, error, question_type, subfield, subject, language
    "Hothan/OlympiadBench": {"configs": ("OE_TO_maths_en_COMP", "OE_TO_maths_zh_COMP", "OE_TO_maths_zh_CEE"),
                             "splits": ("train",),
                             "columns": ("id", "question", "solution", "final_answer", "context", "image_1",
                                         "image_2", "image_3", "image_4", "image_5", "modality", "difficulty",
                                         "is_multiple_answer", "unit", "answer_type", "error", "question_type",
                                         "subfield", "subject", "language")},
    # https://huggingface.co/datasets/math-ai/minervamath : default config, test.jsonl -> split test (272 rows);
    # fields question, answer
    "math-ai/minervamath": {"configs": None, "splits": ("test",), "columns": ("question", "answer")},
    # https://huggingface.co/datasets/qintongli/GSM-Plus : default config, data/test-*.jsonl and
    # data/testmini-*.jsonl -> splits test (10,552) and testmini (2,400); fields question, solution, answer,
    # perturbation_type, seed_question, seed_solution, seed_answer (the card's and the GitHub README's list)
    "qintongli/GSM-Plus": {"configs": None, "splits": ("test", "testmini"),
                           "columns": ("question", "solution", "answer", "perturbation_type", "seed_question",
                                       "seed_solution", "seed_answer")},
    # https://huggingface.co/datasets/tfshaman/Math401_test : default config, split train (401 rows); features
    # question, answer (strings). The original release (github.com/GanjinZero/math401-llm, math401.json) names
    # them query and response.
    "tfshaman/Math401_test": {"configs": None, "splits": ("train",), "columns": ("question", "answer")},
    # https://huggingface.co/datasets/Gxg/Math23K : default config, train / validation / test (the 1,000-problem
    # test set of Wang et al. 2017); fields as in the original release: id, original_text, segmented_text,
    # equation, ans
    "Gxg/Math23K": {"configs": None, "splits": ("train", "validation", "test"),
                    "columns": ("id", "original_text", "segmented_text", "equation", "ans")},
    # ---- long chain-of-thought sources (issue 27), transcribed 2026-12-06
    # https://huggingface.co/datasets/open-r1/OpenR1-Math-220k : configs default (split train, 93,733 problems),
    # extended (train, 131,396) and all (splits default and extended); apache-2.0. Features problem, solution,
    # answer, problem_type, question_type, source, uuid, is_reasoning_complete (list of bool), generations (list of
    # str), correctness_math_verify (list of bool), correctness_llama (list of bool), finish_reasons (list of str),
    # correctness_count (int), messages (list of {content, role})
    "open-r1/OpenR1-Math-220k": {
        "configs": ("default", "extended", "all"), "splits": ("train", "default", "extended"),
        "columns": ("problem", "solution", "answer", "problem_type", "question_type", "source", "uuid",
                    "is_reasoning_complete", "generations", "correctness_math_verify", "correctness_llama",
                    "finish_reasons", "correctness_count", "messages")},
    # https://huggingface.co/datasets/nvidia/OpenMathReasoning : default config; splits cot (3,201,061), tir
    # (1,718,466), genselect (565,620), additional_problems (193,170, problems only); cc-by-4.0. Features
    # expected_answer, problem_type, problem_source, generation_model, pass_rate_72b_tir, problem,
    # generated_solution, inference_mode, used_in_kaggle
    "nvidia/OpenMathReasoning": {
        "configs": None, "splits": ("cot", "tir", "genselect", "additional_problems"),
        "columns": ("expected_answer", "problem_type", "problem_source", "generation_model", "pass_rate_72b_tir",
                    "problem", "generated_solution", "inference_mode", "used_in_kaggle")},
    # https://huggingface.co/datasets/simplescaling/s1K-1.1 : default config, train 1,000; mit. Features solution,
    # question, cot_type, source_type, metadata, gemini_thinking_trajectory, gemini_attempt,
    # deepseek_thinking_trajectory, deepseek_attempt, and the graders' verdicts gemini_grade, gemini_grade_reason,
    # deepseek_grade, deepseek_grade_reason
    "simplescaling/s1K-1.1": {
        "configs": None, "splits": ("train",),
        "columns": ("solution", "question", "cot_type", "source_type", "metadata", "gemini_thinking_trajectory",
                    "gemini_attempt", "deepseek_thinking_trajectory", "deepseek_attempt", "gemini_grade",
                    "gemini_grade_reason", "deepseek_grade", "deepseek_grade_reason")},
    # https://huggingface.co/datasets/GAIR/LIMO : limo.jsonl read as split train (817 rows); apache-2.0; fields
    # question, solution, answer
    "GAIR/LIMO": {"configs": None, "splits": ("train",), "columns": ("question", "solution", "answer")},
}
