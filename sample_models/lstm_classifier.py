"""An LSTM text classifier: embedding, a 2-layer bidirectional LSTM, a linear head.
Its forward returns a dict, as many real models do."""

import torch
from torch import nn

VOCAB, EMBED, HIDDEN, CLASSES = 5000, 64, 128, 4


class LSTMClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.lstm = nn.LSTM(EMBED, HIDDEN, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * HIDDEN, CLASSES)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        out, _ = self.lstm(self.embedding(tokens))
        last = out[torch.arange(out.shape[0]), lengths - 1]
        logits = self.head(last)
        return {"logits": logits, "probs": logits.softmax(-1)}


def example_inputs() -> dict[str, torch.Tensor]:
    return {"tokens": torch.randint(0, VOCAB, (8, 40)), "lengths": torch.full((8,), 40)}


def loss_fn(output: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    targets = torch.arange(output["logits"].shape[0]) % CLASSES
    return nn.functional.cross_entropy(output["logits"], targets)
