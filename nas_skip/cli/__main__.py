"""``python -m nas_skip.cli``."""

from nas_skip.cli import main

main()
