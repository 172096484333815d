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
}
