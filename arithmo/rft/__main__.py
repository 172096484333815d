"""`python -m arithmo.rft`: see arithmo/rft/recipe.py."""

import sys

from arithmo.rft.recipe import main

sys.exit(main())
