"""Item labels (a category, tags) as groups of item positions: side information for the graph.

A label shared by several items says they belong together before anybody took them together.
The neighbour graph counts each label as `graph_label_weight` more users who took all its items
(EASE with side information as extra rows, Jeunen et al. 2020): item pairs that share labels
start closer, and the interactions decide how much closer they end up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.datasets.base import TAG_SEPARATOR
from shared.ml.interactions import IdMap

# Title words as labels: runs of 4+ letters, case folded ("LUNCH BAG RED RETROSPOT" -> LUNCH,
# RETROSPOT); shorter words are mostly "of", "set", colours and sizes.
TITLE_WORD = r"[^\W\d_]{4,}"


def item_label_groups(
    item_ids: IdMap, items: pd.DataFrame, title_words: bool = False
) -> list[np.ndarray]:
    """Per distinct label (an item's `category`, each of its `tags` and, with `title_words`, each
    word of its title), the sorted positions of the catalog items that carry it. Labels on fewer
    than two items pair nothing and are left out; items outside `item_ids` are ignored."""
    frame = items.drop_duplicates("product_id")
    positions = item_ids.positions(frame["product_id"].astype(str).tolist())
    parts = [pd.DataFrame({"item": positions, "label": frame["category"].to_numpy(object)})]
    if "tags" in frame.columns:
        tags = frame["tags"].astype("string").str.split(TAG_SEPARATOR, regex=False)
        parts.append(
            pd.DataFrame({"item": positions, "label": tags.to_numpy(object)}).explode("label")
        )
    if title_words:
        words = frame["title"].astype("string").str.upper().str.findall(TITLE_WORD)
        titled = pd.DataFrame({"item": positions, "label": words.to_numpy(object)})
        titled = titled.explode("label").dropna()
        parts.append(titled.assign(label="title:" + titled["label"].astype(str)))
    pairs = pd.concat(parts, ignore_index=True)
    pairs["label"] = pairs["label"].astype("string").str.strip()
    keep = (pairs["item"] >= 0) & pairs["label"].notna() & (pairs["label"] != "")
    pairs = pairs[keep.to_numpy(bool)].drop_duplicates()
    groups = [
        np.sort(members.to_numpy(np.int64))
        for _, members in pairs.groupby("label", sort=True)["item"]
        if len(members) > 1
    ]
    return groups
