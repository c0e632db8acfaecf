"""Stands in for shared.ml.compile_child in test_native: a compile that never finishes."""

from __future__ import annotations

import time

if __name__ == "__main__":
    time.sleep(300)
