"""A process that hangs, for tests of what stops hung children: sleeps 300 s, whatever its
arguments (it stands in for the ranker's compile child too). With `--child-pid FILE` it first
starts a sleeping child of its own and writes that child's pid to FILE."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    if sys.argv[1:2] == ["--child-pid"]:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        Path(sys.argv[2]).write_text(str(child.pid))
    time.sleep(300)
