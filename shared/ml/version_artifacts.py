"""The files a published model version consists of, and which stage loads which."""

from __future__ import annotations

CATALOG = "catalog.json"


FEATURES = "features.npz"


INDEX = "index.npz"


CONTENT = "content.npz"


RANKER = "ranker.txt"


CANDIDATE_ARTIFACTS = [CATALOG, FEATURES, INDEX, CONTENT]


RANKER_ARTIFACTS = [CATALOG, FEATURES, RANKER]
