"""Process-level settings every service applies at startup."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Keep what exists at startup (imported libraries, the app) out of the cyclic GC's walks.

    A full collection walks every tracked object: ~200k in a service process, nearly all of them
    the libraries' own (FastAPI, pydantic, numpy, LightGBM, Celery...), 50-100 ms during which the
    event loop answers nothing - at 200 req/s a pause like that is the p99. Frozen, they are
    never walked again (a full collection with a model loaded then takes ~1.2 ms). Everything
    created later, models included, is collected as before; what is frozen lives as long as the
    process anyway. Call it before the first model load.
    """
    gc.collect()  # garbage from imports and app creation goes first, not into the frozen set
    gc.freeze()
