"""``python -m pyslide``: the command line; imports cli."""
import sys

from .cli import main

sys.exit(main())
