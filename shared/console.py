"""The CLI's console: tables stay readable when piped or logged."""

from __future__ import annotations

import sys

from rich.console import Console

# Without a terminal rich squeezes tables to 80 columns; metric tables need more.
console = Console(width=None if sys.stdout.isatty() else 140)
