"""Child process of `shared.ml.stage_two.compiled`: compile FOLDER/m{i}.txt to FOLDER/m{i}.o, i < N.

Its own module, importing nothing heavy before it lowers its priority: a version serves with
LightGBM until this is done, so compiling a few seconds later costs less than taking CPU from
requests. SCHED_IDLE runs only on a core nobody else wants.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not allowed: the next best thing
        os.nice(10)
    import lleaves  # after the priority change: its import (llvmlite, numpy) is work too

    folder, n = Path(argv[0]), int(argv[1])
    for i in range(n):
        lleaves.Model(model_file=str(folder / f"m{i}.txt")).compile(cache=str(folder / f"m{i}.o"))


if __name__ == "__main__":
    main(sys.argv[1:])
