"""The repository's objects as plain module-level names, for Feast's own CLI.

`feast plan`, `feast apply` and `feast ui`, run in this folder, import this module (the
library sub-package `features/` is in `.feastignore`) and collect the objects below, as in
Feast's template.
The objects are the ones recsys applies itself (`definitions.feature_definitions`), over
the feature tables of the lake the RECSYS_* settings name; Feast changes the working
directory to this folder, so give RECSYS_STATE_DIR (or RECSYS_LAKE_URI) as an absolute path:

    RECSYS_STATE_DIR=$PWD/.recsys feast -c feature_repo plan
"""
from recsys.core.settings import load_settings
from recsys.feature_repo.features.definitions import (  # noqa: F401 - the entities, for Feast
    item,
    user,
)
from recsys.feature_repo.features.store import repo_definitions

_repo = repo_definitions(load_settings())

# feature views (their batch and push sources come with them)
user_stats = _repo.user_stats
item_stats = _repo.item_stats
user_session = _repo.user_session
# request-time feature
price_fit = _repo.price_fit
# what serving reads and training joins
recommender_v1 = _repo.recommender_v1
training_v1 = _repo.training_v1
