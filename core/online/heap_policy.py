"""How long-running processes keep Python's cyclic garbage collector off their hot paths.

- `freeze_startup_heap()`: everything loaded at start (libraries, a model, Feast's registry)
  lives as long as the process; frozen, a full collection no longer walks it (~400k objects,
  ~200 ms per collection in the serving process). Frozen objects are still freed by
  reference counting.
- `freeze_swapped_in_heap()`: after serving hot-swaps a promoted model, its objects (~45k
  for a 20k-event shop's item-kNN) join the frozen heap too, without a collection first
  (that would walk them all: the pause this avoids). Otherwise every full collection after
  a promotion walks them again (~30 ms each on that model). The swapped-out model is freed
  by reference counting (a loaded model holds no reference cycle; tested), frozen or not.
- `batch_worker_heap()`: the same as at start, and the youngest generation collected after
  `BATCH_GEN0_THRESHOLD` net allocations instead of 700. A stream worker allocates ~100k
  short-lived dicts and lists per batch (events, states, feature rows) and frees them by
  reference counting, but at 700 the collector runs hundreds of times per batch and
  promotes the batch's live objects into older generations, where later collections walk
  them again: a third of the session processor's time. Cycles are still collected, 70 times
  less often.
"""
from __future__ import annotations

import gc

BATCH_GEN0_THRESHOLD = 50_000


def freeze_startup_heap() -> None:
    gc.collect()
    gc.freeze()


def freeze_swapped_in_heap() -> None:
    gc.freeze()


def batch_worker_heap(gen0_threshold: int = BATCH_GEN0_THRESHOLD) -> None:
    freeze_startup_heap()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
