"""Data recipes: source adapters, transforms, decontamination, dedup and the manifest.

    python -m arithmo.data build data_recipes/tiny.yaml --out data/tiny [key=value ...]
"""

from arithmo.data.build import build, build_from_recipe
from arithmo.data.recipe import DataConfig
from arithmo.io import DataError

__all__ = ["build", "build_from_recipe", "DataConfig", "DataError"]
