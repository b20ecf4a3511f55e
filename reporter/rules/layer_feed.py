"""What feeds a layer, read from the report, and the advice that fits it.

The summary's layer table is in execution order (torchinfo's hooks), with each layer's
output shape; walking back from a layer over the rows that only reshape or mask (Flatten,
Dropout, activations) finds the tensor it was given. Tied tensors come from the model's
parameter totals. Nothing here runs the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from reporter.report import LayerRow, Report

# Leaf layers that keep the data's values in place (reshape, mask, pointwise): the layer
# after them is fed by what fed them.
PASS_THROUGH = frozenset(
    {
        "Flatten",
        "Unflatten",
        "Identity",
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
        "AlphaDropout",
        "FeatureAlphaDropout",
        "ReLU",
        "ReLU6",
        "LeakyReLU",
        "GELU",
        "SiLU",
        "Mish",
        "ELU",
        "SELU",
        "Tanh",
        "Sigmoid",
        "Hardswish",
        "Hardsigmoid",
    }
)
EMBEDDINGS = frozenset({"Embedding", "EmbeddingBag"})
POOL_BY_RANK = {3: "AdaptiveAvgPool1d", 4: "AdaptiveAvgPool2d", 5: "AdaptiveAvgPool3d"}


@dataclass(frozen=True)
class Feed:
    """What a layer was given."""

    kind: str  # feature_map, pooled_map, roi, input, features, vocabulary, embedding, unknown
    source: str = ""  # the layer (or input) that produced it
    source_type: str = ""
    shape: tuple[int, ...] = ()  # that tensor's shape, batch first
    tied_with: str = ""  # a parameter sharing this layer's weight
    vocabulary_of: str = ""  # the embedding whose vocabulary this layer projects to

    @property
    def shape_text(self) -> str:
        return " × ".join(str(d) for d in self.shape)

    def describe(self) -> str | None:
        shape = self.shape_text
        where = f"`{self.source}` ({self.source_type})" if self.source_type else self.source
        return {
            "feature_map": f"a flattened feature map {shape} from {where}",
            "pooled_map": f"a pooled map {shape} from {where}",
            "roi": f"RoI pooling {shape} from {where}",
            "input": f"the flattened model input {self.source} ({shape})",
            "features": f"features {shape} from {where}",
            "vocabulary": "its output is the vocabulary of "
            + (f"`{self.vocabulary_of}`" if self.vocabulary_of else "an embedding")
            + (f"; weight tied with {self.tied_with}" if self.tied_with else ""),
            "embedding": "token ids (a vocabulary table)"
            + (f"; weight tied with {self.tied_with}" if self.tied_with else ""),
        }.get(self.kind)


@dataclass(frozen=True)
class Advice:
    severity: str
    recommendation: str
    snippet: str = ""


def layer_feed(report: Report, top: LayerRow) -> Feed:
    """What fed ``top``: the rows before it in execution order, its tied tensors, the
    model's inputs."""
    layers = report.summary.layers
    tied = _tied_with(report, top)
    if top.type in EMBEDDINGS:
        return Feed("embedding", tied_with=tied)
    if top.type != "Linear" or len(top.dims) != 2:
        return Feed("unknown")
    vocab = _vocabulary_of(layers, top, tied)
    if vocab is not None:
        return Feed("vocabulary", tied_with=tied, vocabulary_of=vocab)
    in_features = top.dims[0]
    index = next((i for i, r in enumerate(layers) if r is top), len(layers))
    for row in reversed(layers[:index]):
        if not row.is_leaf:
            continue
        shape = _flat_shape(row.output_shape)
        if shape is None:
            return Feed("unknown")
        found = _judge(row.name, row.type, shape, in_features)
        if found is not None:
            return found
        if row.type not in PASS_THROUGH:
            return Feed("unknown")
    for spec in report.model.inputs:  # nothing computed before it: fed by the input
        found = _judge(spec.name, "", tuple(spec.shape), in_features)
        if found is not None:
            return Feed("input", spec.name, "", found.shape) if found.kind != "features" else found
    return Feed("unknown")


def _judge(name: str, type_: str, shape: tuple[int, ...], in_features: int) -> Feed | None:
    """The feed when this tensor is what the Linear read; None to keep walking back."""
    if "roi" in type_.lower() and len(shape) >= 3:
        return Feed("roi", name, type_, shape)
    if len(shape) >= 3 and math.prod(shape[1:]) == in_features:
        kind = "feature_map" if math.prod(shape[2:]) > 1 else "pooled_map"
        return Feed(kind, name, type_, shape)
    if len(shape) >= 2 and shape[-1] == in_features and math.prod(shape[1:]) != in_features:
        return Feed("features", name, type_, shape)  # applied to the last dim (tokens)
    return None


def _flat_shape(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, (list, tuple)) and value and all(isinstance(d, int) for d in value):
        return tuple(value)
    return None


def _tied_with(report: Report, top: LayerRow) -> str:
    totals = report.model.parameters
    mine = f"{top.name}.weight" if top.name else "weight"
    for group in totals.shared if totals else []:
        if mine in group.names:
            return ", ".join(n for n in group.names if n != mine)
    return ""


def _vocabulary_of(layers: list[LayerRow], top: LayerRow, tied: str) -> str | None:
    """The embedding whose vocabulary a 2-D Linear projects to: tied with it, or with as many
    outputs as it has rows."""
    embeddings = [r for r in layers if r.type in EMBEDDINGS and len(r.dims) == 2]
    tied_names = {n.rsplit(".", 1)[0] for n in tied.split(", ") if n}
    for r in embeddings:
        if r.name in tied_names:
            return r.name
    return next((r.name for r in embeddings if r.dims[0] == top.dims[1] > 2), None)


def dominant_advice(top: LayerRow, feed: Feed) -> Advice:
    """Advice for a layer holding most parameters, from what feeds it."""
    if feed.kind == "feature_map":
        return _pool_first(top, feed)
    if feed.kind in ("embedding", "vocabulary"):
        if feed.tied_with:
            return Advice(
                "info",
                "A vocabulary table shared by the embedding and the output projection: "
                "normal in a small sequence model, where vocabulary × width outweighs the "
                "body. Nothing to fix; at inference, compute logits only for the positions "
                "you need (the last one when generating).",
                "logits = model.lm_head(hidden[:, -1:])  # last position only",
            )
        return Advice(
            "info",
            "A vocabulary-sized layer: normal in a small sequence model. If the model has "
            "both an input embedding and an output projection of the same vocabulary, "
            "tying them stores and trains one table instead of two.",
            "model.lm_head.weight = model.embedding.weight  # same (vocab, width) shape",
        )
    if feed.kind == "roi":
        return Advice(
            "info",
            f"Fed by RoI pooling ({feed.shape_text} per region): the "
            "size is channels × pooled resolution, chosen by the detector's design. To "
            "shrink it, reduce the channels before RoI pooling (a 1×1 conv), the pooled "
            "resolution, or the head's representation size.",
        )
    if feed.kind == "pooled_map":
        return Advice(
            "info",
            "Fed by an already pooled map: its size is channels × outputs. A narrower "
            "layer or a low-rank factorisation (two smaller Linears) shrinks it.",
        )
    if feed.kind == "input":
        return Advice(
            "info",
            f"The first layer, fed by the flattened input ({feed.shape_text}"
            "): its size follows the input's. A convolutional or patch-embedding stem "
            "shares weights across positions if the input is an image.",
        )
    return Advice("info", "Check that this layer's size is intended; it dominates model size.")


def _pool_first(top: LayerRow, feed: Feed) -> Advice:
    """Pool the feature map before flattening: the pooled layer's size, computed."""
    channels, spatial = feed.shape[1], feed.shape[2:]
    pool = POOL_BY_RANK.get(len(feed.shape), "AdaptiveAvgPool2d")
    out = top.dims[1]
    after = channels * out + out  # with bias (the usual head)
    name = top.name.split(".")[-1] or "fc"
    return Advice(
        "warning",
        f"`{top.name}` reads a {' × '.join(map(str, spatial))} feature map flattened with "
        f"its {channels} channels ({top.dims[0]:,} inputs). Pool it first (global average "
        f"pooling keeps {channels} inputs: about {after:,} parameters instead of "
        f"{top.params:,}), or use a narrower layer.",
        f"self.pool = nn.{pool}(1)  # {tuple(feed.shape[1:])} -> "
        f"{(channels, *(1 for _ in spatial))}, before torch.flatten\n"
        f"self.{name} = nn.Linear({channels}, {out})",
    )
