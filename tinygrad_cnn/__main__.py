"""`python -m tinygrad_cnn ...` runs the `tinygrad-cnn` command."""

import sys

from .cli import main

sys.exit(main())
