"""Neural next-item models for sessions, trained on CPU with PyTorch (`recsys[neural]`).

Two encoders of a session's item sequence share one training and scoring path:

- `GRU4Rec` (Hidasi et al., ICLR 2016; the cross-entropy loss of Hidasi & Karatzoglou,
  CIKM 2018): a GRU over the item embeddings; its state after each click, projected back
  into the item space, scores the next item.
- `SASRec` (Kang & McAuley, ICDM 2018): a causal transformer (learned positions,
  pre-norm blocks) over the same embeddings.

Both tie the output to the input embeddings (GRU4Rec's "constrained embedding"): an item's
score is the dot product of the encoded prefix with the item's embedding; the embeddings
start near 0, so items training hardly reaches score near 0 rather than at random.
Training sees every prefix -> next item pair of every session once per epoch: a session is
one sequence and each position's output predicts the following click (a session longer
than `max_length` + 1 is cut into windows of that many clicks, consecutive windows sharing
one click). Sequences are grouped by length into steps of about `batch_size` predictions
(little padding), the steps shuffled. The loss is a sampled softmax cross-entropy: each
target against the step's other targets and `negatives` items drawn by popularity **
`sample_alpha`, logQ-corrected (a full softmax over RetailRocket's 37k items cost ~8
minutes an epoch on these machines, the sampled one well under 1). Adam (sparse for the
embeddings), a fixed seed, one thread (`THREADS`).

Scoring takes a prefix's last `max_length` items and turns the logits into softmax
probabilities (non-negative, as `SessionModel.score` scales them to [0, 1]); an empty
prefix scores 0 everywhere, so popularity orders it. Repeat consumption is the base
class's explicit `repeat_boost`.

A fitted model is data: the network's weights as a dict of float32 arrays plus the
hyperparameters, saved by `core/models/storage.py` like every other model (no pickle, no
`torch.save`). The network is rebuilt from them on the first scoring after a load
(`_derived_network`, never saved). PyTorch is imported only when a model fits or scores:
without it the module imports, and fitting says how to install it.
"""
from __future__ import annotations

import logging
import time
from abc import abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.core.errors import ConfigError
from recsys.core.models.session_base import SessionModel

if TYPE_CHECKING:  # imported when a model fits or scores (`require_torch`)
    from torch import Tensor

    from recsys.core.models.session_networks import SessionEncoder

log = logging.getLogger(__name__)
INSTALL_HINT = "pip install 'recsys[neural]'"
THREADS = 1
"""PyTorch threads. One: on the 2-core benchmark machine shared with other jobs a training
step took 590 ms with 2 threads and 88 ms with 1 (OpenMP's threads wait for each other
when a core is busy elsewhere)."""
SCORE_BATCH = 512


def require_torch() -> None:
    """Import PyTorch and set its threads (`THREADS`), or raise a ConfigError saying how to
    install it."""
    try:
        import torch
    except ImportError as exc:
        raise ConfigError(f"the neural session models need PyTorch, which is not installed: "
                          f"{INSTALL_HINT} (torch 2.13.0, the CPU wheel)") from exc
    torch.set_num_threads(THREADS)


def training_windows(sessions: list[list[int]], max_length: int) -> list[np.ndarray]:
    """Every session as windows of at most `max_length` + 1 clicks (consecutive windows
    share one click), so that each next item of each session is a target exactly once."""
    windows: list[np.ndarray] = []
    for session in sessions:
        s = np.asarray(session, dtype=np.int64)
        for start in range(0, max(len(s) - 1, 0), max_length):
            windows.append(s[start:start + max_length + 1])
    return windows


def length_batches(windows: list[np.ndarray], batch_size: int
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(inputs, targets) padded with 0 on the right, windows of similar length together,
    about `batch_size` targets per batch."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
    batches: list[tuple[np.ndarray, np.ndarray]] = []
    chosen: list[np.ndarray] = []
    targets = 0
    for number, index in enumerate(order):
        chosen.append(windows[index])
        targets += len(windows[index]) - 1
        if targets >= batch_size or number == len(order) - 1:
            width = max(len(w) for w in chosen) - 1
            inputs = np.zeros((len(chosen), width), dtype=np.int64)
            nexts = np.zeros((len(chosen), width), dtype=np.int64)
            for row, window in enumerate(chosen):
                inputs[row, :len(window) - 1] = window[:-1]
                nexts[row, :len(window) - 1] = window[1:]
            batches.append((inputs, nexts))
            chosen, targets = [], 0
    return batches


class NeuralSessionModel(SessionModel):
    """Training and scoring shared by the encoders; a subclass builds its network."""

    name = "neural_session"
    weights: dict[str, np.ndarray]
    """The network's parameters by name, float32 (set by fit)."""

    def __init__(self, dim: int = 64, epochs: int = 4, learning_rate: float = 0.005,
                 batch_size: int = 512, negatives: int = 2048, sample_alpha: float = 0.75,
                 logq: float = 1.0,
                 dropout: float = 0.2, max_length: int = 20, seed: int = 7,
                 **common: float) -> None:
        super().__init__(**common)
        if dim < 1 or epochs < 1 or learning_rate <= 0 or batch_size < 1 \
                or negatives < 1 or sample_alpha < 0 or not 0 <= dropout < 1 \
                or max_length < 1:
            raise ConfigError(f"{self.name} needs dim, epochs, batch_size, negatives, "
                              "max_length >= 1, learning_rate > 0, sample_alpha >= 0 and "
                              "0 <= dropout < 1")
        self.dim, self.epochs, self.learning_rate = int(dim), int(epochs), float(learning_rate)
        self.batch_size, self.negatives = int(batch_size), int(negatives)
        self.sample_alpha, self.dropout = float(sample_alpha), float(dropout)
        self.logq = float(logq)
        self.max_length, self.seed = int(max_length), int(seed)

    @abstractmethod
    def _build_network(self) -> SessionEncoder:
        """A fresh (untrained) network for this model's hyperparameters (PyTorch imported)."""

    def _fit(self, sessions: list[list[int]]) -> None:
        require_torch()
        import torch

        torch.manual_seed(self.seed)
        order = np.random.default_rng(self.seed)
        network = self._build_network()
        batches = length_batches(training_windows(sessions, self.max_length),
                                 self.batch_size)
        shares = self._sampling_shares()
        embedding = [network.items.weight]
        others = [p for p in network.parameters() if p is not network.items.weight]
        optimisers = [torch.optim.SparseAdam(embedding, lr=self.learning_rate),
                      torch.optim.Adam(others, lr=self.learning_rate)]
        for epoch in range(self.epochs):
            network.train()
            started, total, count = time.perf_counter(), 0.0, 0
            for number in order.permutation(len(batches)):
                inputs, nexts = (torch.from_numpy(a) for a in batches[number])
                present = nexts > 0
                states = network.encode(inputs)[present]
                loss = self._sampled_loss(network, states, nexts[present], shares)
                for optimiser in optimisers:
                    optimiser.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch 2.13
                for optimiser in optimisers:
                    optimiser.step()
                total += loss.item() * int(present.sum())
                count += int(present.sum())
            log.info("%s epoch %d: loss %.4f over %d predictions (%.0fs)", self.name,
                     epoch + 1, total / max(count, 1), count, time.perf_counter() - started)
        network.eval()
        self.weights = {key: value.detach().numpy().astype(np.float32, copy=True)
                        for key, value in network.state_dict().items()}
        self._derived_network = network

    def _sampling_shares(self) -> tuple[Tensor, Tensor]:
        """Each item's share of the training clicks, and of the negatives' draw."""
        import torch

        clicks = self.popularity[1:].astype(np.float64) + 1e-9
        drawing = clicks ** self.sample_alpha
        return (torch.from_numpy((clicks / clicks.sum()).astype(np.float32)),
                torch.from_numpy((drawing / drawing.sum()).astype(np.float32)))

    def _sampled_loss(self, network: SessionEncoder, states: Tensor, targets: Tensor,
                      shares: tuple[Tensor, Tensor]) -> Tensor:
        """Sampled softmax cross-entropy of each target against the step's other targets
        and `negatives` items drawn by popularity ** `sample_alpha` (shared by the step).
        A candidate that is the row's own item under another column is masked out; with
        `logq` 1 every logit is lowered by the log of the candidate's expected count in
        the step (Yi et al., RecSys 2019), so popular items are not over-penalised."""
        import torch

        clicks, drawing = shares
        drawn = torch.multinomial(drawing, self.negatives, replacement=True)
        candidates = torch.cat([targets - 1, drawn])
        logits: Tensor = states @ network.items(candidates + 1).T
        if self.logq:
            expected = len(targets) * clicks[candidates] + self.negatives * drawing[candidates]
            logits = logits - self.logq * torch.log(expected)
        rows = torch.arange(len(targets))
        clash = candidates[None, :] == targets[:, None] - 1
        clash[rows, rows] = False
        return torch.nn.functional.cross_entropy(logits.masked_fill(clash, float("-inf")),
                                                 rows)

    def _network(self) -> SessionEncoder:
        """The fitted network, rebuilt from `weights` after a load (PyTorch imported)."""
        import torch

        network: SessionEncoder | None = getattr(self, "_derived_network", None)
        if network is None:
            network = self._build_network()
            network.load_state_dict({key: torch.from_numpy(np.array(value))
                                     for key, value in self.weights.items()})
            network = self._derived_network = network.eval()
        return network

    def _raw_scores(self, prefixes: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(prefixes), self.n_items + 1), dtype=np.float32)
        rows = [row for row, prefix in enumerate(prefixes) if prefix]
        if not rows:
            return out
        require_torch()
        import torch

        network = self._network()
        for start in range(0, len(rows), SCORE_BATCH):
            chunk = rows[start:start + SCORE_BATCH]
            recent = [prefixes[row][-self.max_length:] for row in chunk]
            lengths = np.asarray([len(p) for p in recent])
            inputs = np.zeros((len(recent), lengths.max()), dtype=np.int64)
            for row, prefix in enumerate(recent):
                inputs[row, :len(prefix)] = prefix
            with torch.no_grad():
                states = network.encode(torch.from_numpy(inputs))
                last = states[torch.arange(len(recent)), torch.from_numpy(lengths - 1)]
                out[chunk, 1:] = torch.softmax(network.logits(last), dim=1).numpy()
        return out


class GRU4Rec(NeuralSessionModel):
    name = "gru4rec"
    search_space = {"repeat_boost": [-1.0, 0.0, 1.0, 5.0], "learning_rate": [0.005, 0.02],
                    "dropout": [0.0, 0.4], "dim": [128]}
    """Every candidate is a full fit (minutes on RetailRocket): tune with a small budget;
    the repeat boost comes first, as it differs most between data sets."""

    def _build_network(self) -> SessionEncoder:
        from recsys.core.models.session_networks import GRUEncoder

        return GRUEncoder(self.n_items, self.dim, self.dropout)


class SASRec(NeuralSessionModel):
    name = "sasrec"
    search_space = {"repeat_boost": [-1.0, 0.0, 1.0, 5.0], "learning_rate": [0.005, 0.02],
                    "dropout": [0.0, 0.4], "layers": [1, 3]}

    def __init__(self, layers: int = 2, heads: int = 2,
                 **params: Any) -> None:  # NeuralSessionModel's own keywords, typed there
        super().__init__(**params)
        if layers < 1 or heads < 1 or self.dim % heads:
            raise ConfigError("sasrec needs layers >= 1, heads >= 1 and dim divisible by heads")
        self.layers, self.heads = int(layers), int(heads)

    def _build_network(self) -> SessionEncoder:
        from recsys.core.models.session_networks import CausalTransformer

        return CausalTransformer(self.n_items, self.dim, self.dropout, self.max_length,
                                 self.layers, self.heads)
