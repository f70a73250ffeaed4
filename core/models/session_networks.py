"""The PyTorch networks of the neural session models (`session_neural.py`): a GRU and a
causal transformer over item embeddings, their output tied to those embeddings.

This module imports PyTorch at its top: `session_neural` imports it only when a model fits
or scores, so that the zoo imports without PyTorch installed.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

EMBEDDING_STD = 0.01


def item_embedding(n_items: int, dim: int) -> nn.Embedding:
    """Item embeddings (sparse gradients, row 0 = padding) starting near 0: the output is
    tied to them, and PyTorch's N(0, 1) start would give the rarely clicked items, whose
    rows training hardly moves, large random scores."""
    items = nn.Embedding(n_items + 1, dim, padding_idx=0, sparse=True)
    nn.init.normal_(items.weight, std=EMBEDDING_STD)
    with torch.no_grad():
        items.weight[0].zero_()
    return items


class SessionEncoder(nn.Module):
    """`forward` maps (batch, length) item ids to (batch, length, dim) states, `logits`
    states to scores of items 1..n_items, `items` is the item embedding."""

    items: nn.Embedding

    def encode(self, inputs: Tensor) -> Tensor:
        """`forward` through the module call (hooks included), typed."""
        states: Tensor = self(inputs)
        return states

    def logits(self, states: Tensor) -> Tensor:
        return states @ self.items.weight[1:].T


class GRUEncoder(SessionEncoder):
    def __init__(self, n_items: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.items = item_embedding(n_items, dim)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.project = nn.Linear(dim, dim)

    def forward(self, inputs: Tensor) -> Tensor:
        """(batch, length) item ids -> (batch, length, dim) states in item space."""
        embedded: Tensor = self.dropout(self.items(inputs))
        states: Tensor = self.gru(embedded)[0]
        projected: Tensor = self.project(self.dropout(states))
        return projected


class CausalTransformer(SessionEncoder):
    def __init__(self, n_items: int, dim: int, dropout: float, max_length: int, layers: int,
                 heads: int) -> None:
        super().__init__()
        self.dim = dim
        self.items = item_embedding(n_items, dim)
        self.positions = nn.Embedding(max_length, dim)
        self.dropout = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=dim,
                                           dropout=dropout, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, inputs: Tensor) -> Tensor:
        """(batch, length) item ids, right-padded -> (batch, length, dim); position t
        sees clicks 0..t only, so padding after a click never reaches it."""
        length = inputs.shape[1]
        x: Tensor = self.items(inputs) * self.dim ** 0.5 + self.positions(torch.arange(length))
        causal = nn.Transformer.generate_square_subsequent_mask(length)
        states: Tensor = self.norm(self.blocks(self.dropout(x), mask=causal, is_causal=True))
        return states
