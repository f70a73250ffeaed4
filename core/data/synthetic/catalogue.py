"""The shop's catalogue and customers: categories, brands, prices, hidden tastes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TAXONOMY: dict[str, tuple[str, ...]] = {
    "electronics": ("smartphone", "headphone", "tablet", "camera", "smartwatch"),
    "computers": ("notebook", "desktop", "monitor", "peripherals"),
    "appliances": ("kitchen", "vacuum", "washer", "environment"),
    "apparel": ("shoes", "jacket", "dress", "jeans", "tshirt"),
    "furniture": ("sofa", "bed", "chair", "table"),
    "kids": ("toys", "stroller", "clothing"),
    "beauty": ("skincare", "fragrance", "makeup"),
    "sport": ("bicycle", "fitness", "outdoor"),
    "home": ("kitchenware", "bedding", "decor", "lighting"),
    "auto": ("tires", "accessories"),
    "books": ("fiction", "nonfiction", "comics"),
    "grocery": ("coffee", "snacks", "drinks"),
}
# Median price per top-level category; each subcategory varies around it.
MEDIAN_PRICE = {"electronics": 300, "computers": 650, "appliances": 250, "apparel": 45,
                "furniture": 400, "kids": 35, "beauty": 25, "sport": 120, "home": 30,
                "auto": 90, "books": 15, "grocery": 8}
BRAND_STEMS = ("nova", "orbi", "kiro", "vela", "lumo", "tera", "zeno", "mira", "sola", "quad",
               "brio", "axon", "vento", "pico", "rhea", "ulma")
BRANDS_PER_TOP = 6
DEVICES = np.array(["mobile", "desktop", "tablet"])
DEVICE_P = np.array([0.6, 0.3, 0.1])
SEGMENTS = np.array(["new_visitor", "returning_visitor", "vip"])


@dataclass
class Catalogue:
    """Items with their category, brand, price, popularity and hidden taste vector."""

    item_ids: np.ndarray
    category: np.ndarray       # subcategory index per item
    category_codes: np.ndarray  # "top.sub" per subcategory
    brand: np.ndarray
    price: np.ndarray
    popularity: np.ndarray      # sums to 1
    vectors: np.ndarray         # items x dim
    centres: np.ndarray         # subcategories x dim

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"item_id": self.item_ids,
                             "category": self.category_codes[self.category],
                             "brand": self.brand, "price": self.price})


@dataclass
class Customers:
    """Users with their category affinities, taste vectors, activity and context."""

    user_ids: np.ndarray
    affinity_cdf: np.ndarray   # users x subcategories, cumulative
    vectors: np.ndarray        # users x dim
    activity: np.ndarray       # sums to 1
    device: np.ndarray
    segment: np.ndarray
    logged_in: np.ndarray


def make_catalogue(rng: np.random.Generator, n_items: int, dim: int) -> Catalogue:
    codes = [f"{top}.{sub}" for top, subs in TAXONOMY.items() for sub in subs]
    tops = [code.split(".")[0] for code in codes]
    n_cat = len(codes)
    centres = rng.normal(size=(n_cat, dim))
    cat_weight = rng.dirichlet(np.full(n_cat, 2.0))
    category = rng.choice(n_cat, size=n_items, p=cat_weight)
    vectors = centres[category] + 0.6 * rng.normal(size=(n_items, dim))
    ranks = rng.permutation(n_items) + 1
    popularity = 1.0 / ranks ** 0.9
    popularity /= popularity.sum()
    brand_pool = np.array([f"{stem}{suffix}" for stem in BRAND_STEMS for suffix in ("", "x", "on")])
    top_index = {top: i for i, top in enumerate(TAXONOMY)}
    top_brands = rng.choice(len(brand_pool), size=(len(TAXONOMY), BRANDS_PER_TOP))
    item_top = np.array([top_index[tops[c]] for c in category])
    brand = brand_pool[top_brands[item_top, rng.integers(0, BRANDS_PER_TOP, n_items)]]
    sub_median = np.array([MEDIAN_PRICE[t] for t in tops]) * rng.lognormal(0, 0.3, n_cat)
    price = np.round(sub_median[category] * rng.lognormal(0, 0.55, n_items), 2)
    item_ids = np.array([f"p{i:06d}" for i in range(n_items)])
    return Catalogue(item_ids, category, np.array(codes), brand, price, popularity, vectors,
                     centres)


def make_customers(rng: np.random.Generator, n_users: int, catalogue: Catalogue) -> Customers:
    n_cat, dim = catalogue.centres.shape
    affinity = rng.dirichlet(np.full(n_cat, 0.08), size=n_users)
    vectors = affinity @ catalogue.centres + 0.7 * rng.normal(size=(n_users, dim))
    activity = rng.lognormal(0, 1.0, n_users)
    activity /= activity.sum()
    rank = activity.argsort().argsort() / max(n_users - 1, 1)
    segment = SEGMENTS[np.digitize(rank, [0.5, 0.95])]
    return Customers(
        user_ids=np.array([f"u{i:07d}" for i in range(n_users)]),
        affinity_cdf=np.cumsum(affinity, axis=1),
        vectors=vectors,
        activity=activity,
        device=rng.choice(DEVICES, size=n_users, p=DEVICE_P),
        segment=segment,
        logged_in=rng.random(n_users) < np.where(segment == "new_visitor", 0.2, 0.8),
    )
