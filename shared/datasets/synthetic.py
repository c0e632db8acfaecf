"""Reproducible synthetic shop data with planted structure a two-stage recommender can find.

What is planted, and which part of the pipeline should pick it up:

* segment -> category tastes (each segment favours 1-3 categories; users vary around it):
  user/category affinity features;
* age -> price sensitivity (young users avoid expensive items, older ones do not): the ranker's
  user x item features;
* Zipf-like base popularity: the popularity baseline (and a popularity feature);
* small "collections" inside each category (same brand, same price tier) that users walk through
  one after another: co-occurrence item embeddings and k-NN candidates;
* persistent tastes and Markov-style sessions, so a user's recent items predict the next ones;
* heavy and light users, most of them active both before and inside the last two weeks, so a
  time split leaves plenty of users to evaluate.

`generate_with_tastes` also returns what the data was drawn from (`HiddenTastes`): the traffic
simulator (`benchmarks/simulator.py`) lets simulated users choose by it. Same seed, same data:
asking for the tastes draws nothing more.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from shared.datasets.base import Dataset
from shared.datasets.tastes import PRICE_FIT, HiddenTastes

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

# Fixed end date so that the same seed gives byte-identical data whenever it is generated.
END = datetime(2024, 7, 1, tzinfo=UTC)  # exclusive: the last event is on 2024-06-30
END_TS = int(END.timestamp())
DAY = 86_400
# Matches TrainParams.test_days: most users get activity on both sides of this cut.
RECENT_DAYS = 14

# (name, median log-price, product nouns for titles)
CATEGORIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("electronics", 4.6, ("Headphones", "Charger", "Speaker", "Smartwatch", "Keyboard", "Webcam")),
    ("books", 2.7, ("Novel", "Cookbook", "Biography", "Travel Guide", "Comic", "Atlas")),
    ("home", 3.6, ("Lamp", "Cushion", "Vase", "Rug", "Clock", "Mirror")),
    ("fashion", 3.5, ("Jacket", "Sneakers", "Scarf", "Backpack", "Hat", "Jeans")),
    ("beauty", 3.0, ("Serum", "Lipstick", "Shampoo", "Perfume", "Face Mask", "Lotion")),
    ("sports", 3.8, ("Yoga Mat", "Dumbbells", "Water Bottle", "Tennis Racket", "Helmet", "Ball")),
    ("toys", 3.1, ("Puzzle", "Building Set", "Plush Bear", "Board Game", "Kite", "Robot")),
    ("grocery", 2.0, ("Coffee", "Tea", "Olive Oil", "Chocolate", "Granola", "Honey")),
)
BRANDS = (
    "Acme",
    "Apex",
    "Nova",
    "Orbit",
    "Zenith",
    "Lumen",
    "Vertex",
    "Atlas",
    "Nimbus",
    "Pixel",
    "Quartz",
    "Summit",
    "Echo",
    "Harbor",
    "Maple",
    "Cedar",
    "Aurora",
    "Comet",
    "Delta",
    "Falcon",
    "Juniper",
    "Kestrel",
    "Lotus",
    "Meridian",
)

N_SEGMENTS = 5
ZIPF_EXPONENT = 0.9
# Per-step behaviour of the session process (the rest is a fresh draw from the user's tastes).
P_COLLECTION = 0.45  # next item from the same collection as the previous one
P_SAME_CATEGORY = 0.15  # next item from the same category (popularity x price fit)
P_REPEAT = 0.04  # re-buy something already bought
FRESH_RETRIES = 3  # redraws when a draw hits an already-bought item
MAX_EVENTS = 250  # cap for the heaviest users
AGE_BINS = np.arange(18, 80, 3)  # users of nearby ages share one price-fit distribution


def _sample_rows(cdf: Floats, rows: Ints, rng: np.random.Generator) -> Ints:
    """One column index per entry of `rows`, drawn from each row's normalized cumulative weights.

    Offsetting row r by r turns all rows into one sorted array, so a single searchsorted call
    samples every row at once instead of looping in Python.
    """
    n_cols = cdf.shape[1]
    flat = (cdf + np.arange(cdf.shape[0])[:, None]).ravel()
    pos = np.searchsorted(flat, rows + rng.random(len(rows)), side="right")
    # Clipping guards against u + r rounding up to r + 1 (probability ~1e-14).
    cols: Ints = np.minimum(pos - rows * n_cols, n_cols - 1).astype(np.int64)
    return cols


def _normalized_cdf(weights: Floats) -> Floats:
    cdf: Floats = np.cumsum(weights, axis=-1, dtype=np.float64)
    total = cdf[..., -1:]
    # x / x is exactly 1.0, so padding after the last positive weight can never be drawn.
    out: Floats = np.ones_like(cdf)
    np.divide(cdf, total, out=out, where=total > 0)
    return out


def _padded_groups(labels: Ints, n_groups: int) -> Ints:
    """(n_groups, max_size) member indices per group, padded with -1."""
    order = np.argsort(labels, kind="stable")
    sizes = np.bincount(labels, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    slot = np.arange(len(labels)) - np.repeat(starts, sizes)
    out = np.full((n_groups, max(int(sizes.max()), 1)), -1, dtype=np.int64)
    out[labels[order], slot] = order
    return out


def _make_items(
    n_products: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, Ints, Ints, Floats, Floats]:
    """Items plus the hidden structure: category, collection, popularity, in-category price z."""
    n_cat = len(CATEGORIES)
    category: Ints = rng.permutation(np.arange(n_products, dtype=np.int64) % n_cat)
    # Collections of 3-8 items inside each category: one brand, one price tier.
    collection = np.empty(n_products, dtype=np.int64)
    next_id = 0
    for c in range(n_cat):
        members = rng.permutation(np.flatnonzero(category == c))
        sizes = rng.integers(3, 9, size=len(members))
        labels = np.repeat(np.arange(len(members)), sizes)[: len(members)]
        collection[members] = next_id + labels
        next_id += int(labels.max()) + 1 if len(labels) else 0
    n_coll = next_id

    level = np.array([lvl for _, lvl, _ in CATEGORIES])
    log_price = (
        level[category]
        + rng.normal(0.0, 0.4, n_coll)[collection]
        + rng.normal(0.0, 0.2, n_products)
    )
    price = np.round(np.exp(log_price), 2).clip(0.5, None)
    # Standardize within category so price sensitivity means "pricey for this kind of thing".
    z_price = np.zeros(n_products)
    for c in range(n_cat):
        m = category == c
        lp = np.log(price[m])
        z_price[m] = (lp - lp.mean()) / (lp.std() + 1e-9)

    rank = rng.permutation(n_products)
    popularity: Floats = np.power(rank + 1.0, -ZIPF_EXPONENT, dtype=np.float64)

    brand = rng.permutation(np.arange(n_coll) % len(BRANDS))[collection]
    noun_idx = rng.integers(0, 6, n_products)
    titles = [
        f"{BRANDS[brand[i]]} {CATEGORIES[category[i]][2][noun_idx[i]]} #{i + 1}"
        for i in range(n_products)
    ]
    items = pd.DataFrame(
        {
            "product_id": [f"P{i + 1}" for i in range(n_products)],
            "title": titles,
            "category": [CATEGORIES[c][0] for c in category],
            "price": price.astype(np.float64),
        }
    )
    return items, category, collection, popularity, z_price


def _make_users(n_users: int, rng: np.random.Generator) -> tuple[pd.DataFrame, Floats]:
    """Users plus their hidden per-category taste distribution."""
    n_cat = len(CATEGORIES)
    # Skewed towards younger shoppers, whole years.
    age = np.floor(18 + 58 * rng.beta(2.0, 3.0, n_users)).clip(18, 75)
    segment = rng.integers(0, N_SEGMENTS, n_users)

    seg_logits = np.zeros((N_SEGMENTS, n_cat))
    for s in range(N_SEGMENTS):
        liked = rng.choice(n_cat, size=int(rng.integers(1, 4)), replace=False)
        seg_logits[s, liked] = 2.5
    seg_probs = np.exp(seg_logits) / np.exp(seg_logits).sum(axis=1, keepdims=True)
    # Individual tastes scatter around the segment's (a concentration of 12 keeps them close):
    # normalized gammas are Dirichlet draws, vectorized over users.
    raw = rng.gamma(12.0 * seg_probs[segment] + 0.05)
    taste: Floats = raw / raw.sum(axis=1, keepdims=True)

    users = pd.DataFrame(
        {
            "user_id": [f"U{u + 1}" for u in range(n_users)],
            "age": age.astype(np.float64),
            "segment": [f"seg{s}" for s in segment],
        }
    )
    return users, taste


def _event_times(n_events: Ints, n_days: int, rng: np.random.Generator) -> Ints:
    """Unix seconds per event (users concatenated, each user's events ascending).

    Events come in short sessions spread uniformly over the period; 85% of users are forced to
    have a session both before and inside the last RECENT_DAYS so a time split can evaluate them.
    """
    n_users = len(n_events)
    start = END_TS - n_days * DAY
    span = n_days * DAY - 2 * 3600  # sessions last < 1 h; keep them inside the period
    cut = END_TS - RECENT_DAYS * DAY - start
    n_sessions = np.maximum(2, np.round(n_events / 2.5).astype(np.int64))
    session_user = np.repeat(np.arange(n_users), n_sessions)
    sess = rng.integers(0, span, len(session_user))
    sess = sess[np.lexsort((sess, session_user))]
    first = np.concatenate([[0], np.cumsum(n_sessions)[:-1]])
    last = first + n_sessions - 1
    forced = rng.random(n_users) < 0.85
    fix_last = forced & (sess[last] < cut)
    sess[last[fix_last]] = rng.integers(cut, span, int(fix_last.sum()))
    fix_first = forced & (sess[first] >= cut)
    sess[first[fix_first]] = rng.integers(0, cut, int(fix_first.sum()))

    # Event j of a user with n events and s sessions falls into session floor(j * s / n).
    user = np.repeat(np.arange(n_users), n_events)
    j = np.arange(len(user)) - np.repeat(np.cumsum(n_events) - n_events, n_events)
    s_idx = first[user] + (j * n_sessions[user]) // n_events[user]
    gaps = rng.integers(60, 600, len(user))
    # Seconds since the session start: cumulative gaps, restarted at each new session.
    new_session = np.concatenate([[True], s_idx[1:] != s_idx[:-1]])
    csum = np.cumsum(gaps)
    base = np.maximum.accumulate(np.where(new_session, csum, 0))
    times = start + sess[s_idx] + (csum - base)
    # Overlapping sessions could break per-user order; the session process needs it ascending.
    ordered: Ints = times[np.lexsort((times, user))].astype(np.int64)
    return ordered


def _new_arrivals(items: pd.DataFrame, n_new: int, seed: int) -> tuple[pd.DataFrame, Ints]:
    """Products just added to the catalog, nobody took them yet: each joins the brand and
    category of an existing product, at a nearby price (what a shop's new season looks like).
    Also the row of the product each one was modelled on."""
    rng = np.random.default_rng([seed, 1])  # own stream: the rest of the data stays identical
    source: Ints = rng.integers(0, len(items), n_new).astype(np.int64)
    like = items.iloc[source].reset_index(drop=True)
    nouns = {name: words for name, _, words in CATEGORIES}
    start = len(items)
    titles = [
        f"{title.split(' ')[0]} {nouns[cat][int(rng.integers(0, 6))]} #{start + j + 1}"
        for j, (title, cat) in enumerate(zip(like["title"], like["category"], strict=True))
    ]
    frame = pd.DataFrame(
        {
            "product_id": [f"P{start + j + 1}" for j in range(n_new)],
            "title": titles,
            "category": like["category"],
            "price": np.round(like["price"] * np.exp(rng.normal(0.0, 0.1, n_new)), 2),
        }
    )
    return frame, source


def generate(
    n_users: int = 600,
    n_products: int = 300,
    n_days: int = 120,
    seed: int = 42,
    n_new_products: int = 0,
) -> Dataset:
    """Synthetic shop with `n_users` users, `n_products` products over `n_days` up to 2024-06-30,
    plus `n_new_products` catalog items without any interaction yet (cold-start products)."""
    return generate_with_tastes(n_users, n_products, n_days, seed, n_new_products)[0]


def generate_with_tastes(
    n_users: int = 600,
    n_products: int = 300,
    n_days: int = 120,
    seed: int = 42,
    n_new_products: int = 0,
) -> tuple[Dataset, HiddenTastes]:
    """`generate`'s dataset (the same for the same arguments) and the tastes it was drawn from."""
    if n_users < 1 or n_products < 1 or n_days <= RECENT_DAYS:
        raise ValueError("need n_users >= 1, n_products >= 1 and n_days > 14")
    rng = np.random.default_rng(seed)
    n_cat = len(CATEGORIES)
    items, category, collection, popularity, z_price = _make_items(n_products, rng)
    users, taste = _make_users(n_users, rng)
    age = users["age"].to_numpy()

    # Price fit: sensitivity > 0 (young) penalizes items pricey for their category, < 0 favours.
    sensitivity = np.clip((45.0 - AGE_BINS) / 20.0, -0.6, 1.35)
    age_bin = np.clip(np.searchsorted(AGE_BINS, age, side="right") - 1, 0, len(AGE_BINS) - 1)
    cat_members = _padded_groups(category, n_cat)  # (n_cat, max_cat_size)
    coll_members = _padded_groups(collection, int(collection.max()) + 1)
    valid = cat_members >= 0
    fit = popularity[cat_members] * np.exp(
        -PRICE_FIT * sensitivity[:, None, None] * z_price[cat_members]
    )
    item_cdf = _normalized_cdf(np.where(valid, fit, 0.0)).reshape(-1, cat_members.shape[1])
    taste_cdf = _normalized_cdf(taste)

    n_events = np.round(3 + rng.lognormal(np.log(18.0), 0.8, n_users)).astype(np.int64)
    n_events = np.minimum(n_events, MAX_EVENTS)
    hist = np.full((n_users, int(n_events.max())), -1, dtype=np.int64)

    def fresh(us: Ints, cats: Ints | None) -> Ints:
        """Category from the user's tastes (unless given), item by popularity x price fit."""
        if cats is None:
            cats = _sample_rows(taste_cdf, us, rng)
        col = _sample_rows(item_cdf, age_bin[us] * n_cat + cats, rng)
        return cat_members[cats, col]

    # One step of every still-active user at a time: loops over steps, never over users.
    for t in range(hist.shape[1]):
        us = np.flatnonzero(n_events > t)
        seen = hist[us, :t]
        mode = rng.random(len(us))
        pick = fresh(us, None)
        if t > 0:
            prev = hist[us, t - 1]
            in_cat = mode < P_SAME_CATEGORY
            pick[in_cat] = fresh(us[in_cat], category[prev[in_cat]])

            # Walk on inside the previous item's collection, to an item not bought yet.
            coll = (mode >= P_SAME_CATEGORY) & (mode < P_SAME_CATEGORY + P_COLLECTION)
            members = coll_members[collection[prev[coll]]]
            bought = (members[:, :, None] == seen[coll][:, None, :]).any(axis=2)
            w = np.where((members >= 0) & ~bought, popularity[members], 0.0)
            ok = w.sum(axis=1) > 0
            col = _sample_rows(_normalized_cdf(w[ok]), np.arange(int(ok.sum())), rng)
            idx = np.flatnonzero(coll)[ok]
            pick[idx] = members[ok, col]

            rep = mode >= 1.0 - P_REPEAT
            pick[rep] = seen[rep, rng.integers(0, t, int(rep.sum()))]
            # Non-repeat draws that hit a bought item are redrawn a few times, then kept.
            for _ in range(FRESH_RETRIES):
                dup = ~rep & (seen == pick[:, None]).any(axis=1)
                if not dup.any():
                    break
                pick[dup] = fresh(us[dup], None)
        hist[us, t] = pick

    user_idx = np.repeat(np.arange(n_users), n_events)
    item_idx = hist[hist >= 0]  # row-major: users in order, each user's events in order
    ts = _event_times(n_events, n_days, rng)
    # Stronger signals (cart, purchase, good rating) where the category suits the user.
    affinity = np.log(taste[user_idx, category[item_idx]] * n_cat + 1e-3)
    rating = np.clip(np.round(3.0 + 0.7 * affinity + rng.normal(0.0, 0.9, len(item_idx))), 1, 5)

    interactions = pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy()[user_idx],
            "product_id": items["product_id"].to_numpy()[item_idx],
            "rating": rating.astype(np.float64),
            "ts": ts,
        }
    )
    interactions = interactions.sort_values(["ts", "user_id"], kind="stable", ignore_index=True)
    source: Ints = np.arange(n_products, dtype=np.int64)
    if n_new_products > 0:
        arrivals, like = _new_arrivals(items, n_new_products, seed)
        items = pd.concat([items, arrivals], ignore_index=True)
        source = np.concatenate([source, like])
    tastes = HiddenTastes(
        user_ids=tuple(users["user_id"]),
        product_ids=tuple(items["product_id"]),
        taste=taste,
        sensitivity=sensitivity[age_bin].astype(np.float64),
        category=category[source],
        collection=collection[source],
        popularity=popularity[source],
        z_price=z_price[source],
        new=np.arange(len(source)) >= n_products,
    )
    data = Dataset(name="synthetic", interactions=interactions, items=items, users=users)
    return data, tastes


def write_seed_csv(dataset: Dataset, path: Path) -> None:
    """The demo file format: one row per interaction with user and item attributes inlined."""
    frame = dataset.interactions.merge(
        dataset.users[["user_id", "age"]], on="user_id", how="left"
    ).merge(dataset.items[["product_id", "price", "category"]], on="product_id", how="left")
    frame["timestamp"] = pd.to_datetime(frame["ts"], unit="s", utc=True).dt.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    columns = ["user_id", "product_id", "rating", "age", "price", "category", "timestamp"]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[columns].to_csv(path, index=False)
