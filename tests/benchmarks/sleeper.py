"""A stand-in for a benchmark that hangs with a child process of its own (for test_conftest):
writes the child's pid to the file named by its argument, then sleeps."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    Path(sys.argv[1]).write_text(str(child.pid))
    time.sleep(300)
