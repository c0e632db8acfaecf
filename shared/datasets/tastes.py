"""What the synthetic generator (`shared/datasets/synthetic.py`) drew each user's choices from:
the tastes its data only shows through what users took. The traffic simulator
(`benchmarks/simulator.py`) lets simulated users choose by them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
PRICE_FIT = 1.3  # how strongly price sensitivity weighs an item's in-category price position


@dataclass(frozen=True)
class HiddenTastes:
    """What the generator drew each user's choices from, which the data only shows through
    what users took. Users in the order of `user_ids` (U1, U2, ...), products in the order of
    `product_ids` (P1, P2, ..., the new arrivals last).

    A fresh draw of user u (the step that is neither a collection walk, a same-category step
    nor a re-buy) picks category c with probability taste[u, c], then product i of c with
    probability proportional to popularity[i] * exp(-PRICE_FIT * sensitivity[u] * z_price[i]):
    `choice_probability` is that law. New arrivals were never drawn; they carry the popularity
    and price position of the product each was modelled on, and are left out of the in-category
    normalization (so a new product competes as its model would, without taking its share).
    """

    user_ids: tuple[str, ...]
    product_ids: tuple[str, ...]
    taste: Floats  # (users, categories), rows sum to 1
    sensitivity: Floats  # (users,): > 0 avoids items pricey for their category, < 0 likes them
    category: Ints  # (products,) index into CATEGORIES
    collection: Ints  # (products,) brand-and-price-tier group inside a category
    popularity: Floats  # (products,) Zipf base weight
    z_price: Floats  # (products,) log price standardized within the category
    new: npt.NDArray[np.bool_]  # (products,) a new arrival: nobody took it

    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids)}

    def product_index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.product_ids)}

    def choice_probability(self, users: Ints, products: Ints) -> Floats:
        """P(a fresh draw of user u is product i) for each pair (users[j], products[j]),
        broadcast like numpy arrays; over the products that were drawn from, it sums to 1."""
        users, products = np.broadcast_arrays(np.asarray(users), np.asarray(products))
        asked, where = np.unique(users, return_inverse=True)
        drawn = np.flatnonzero(~self.new)
        fit = self._fit(asked[:, None], drawn[None, :])  # (users asked, drawn-from products)
        # Each asked user's in-category normalizer: the fit summed over the category's products.
        norm = np.stack(
            [fit[:, self.category[drawn] == c].sum(axis=1) for c in range(self.taste.shape[1])],
            axis=1,
        )
        cat = self.category[products]
        out: Floats = (
            self.taste[users, cat]
            * self._fit(users, products)
            / norm[where.reshape(users.shape), cat]
        )
        return out

    def _fit(self, users: Ints, products: Ints) -> Floats:
        fit: Floats = self.popularity[products] * np.exp(
            -PRICE_FIT * self.sensitivity[users] * self.z_price[products]
        )
        return fit
