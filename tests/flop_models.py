"""Small real-architecture models for the FLOP tests, as model-file sources (plain torch;
torchvision is not installed)."""

from __future__ import annotations

SEQUENTIAL = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.0), nn.Linear(32, 8))

def example_inputs():
    return torch.randn(4, 16)
"""

# A stem conv, then ResNet's BasicBlock with a strided downsample: 16 -> 32 channels,
# 16x16 -> 8x8.
BASIC_BLOCK = """
import torch
from torch import nn

class BasicBlock(nn.Module):
    def __init__(self, cin=16, cout=32):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)  # one module, called twice, as torchvision's
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout)
        )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.downsample(x)
        return self.relu(out)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.block = BasicBlock()

    def forward(self, x):
        return self.block(self.stem(x))

def build_model():
    return Net()

def example_inputs():
    return torch.randn(2, 3, 16, 16)
"""

# A depthwise-separable block (MobileNet v1): depthwise 3x3 then pointwise 1x1.
DEPTHWISE = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.Conv2d(32, 32, 3, padding=1, groups=32),
        nn.BatchNorm2d(32),
        nn.ReLU6(),
        nn.Conv2d(32, 64, 1),
    )

def example_inputs():
    return torch.randn(2, 3, 28, 28)
"""

# MobileNetV2/EfficientNet inverted residual: expand 1x1, depthwise 3x3, project 1x1.
INVERTED_RESIDUAL = """
import torch
from torch import nn

class InvertedResidual(nn.Module):
    def __init__(self, c=24, expand=6):
        super().__init__()
        h = c * expand
        self.stem = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.expand = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.SiLU())
        self.depthwise = nn.Sequential(
            nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False), nn.BatchNorm2d(h), nn.SiLU()
        )
        self.project = nn.Sequential(nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        x = self.stem(x)
        return x + self.project(self.depthwise(self.expand(x)))

def build_model():
    return InvertedResidual()

def example_inputs():
    return torch.randn(2, 3, 14, 14)
"""

# A pre-norm ViT encoder block with nn.MultiheadAttention, after a patch embedding.
VIT_BLOCK = """
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self, dim=64, heads=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.drop = nn.Dropout(0.0)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim),
            nn.Dropout(0.0),
        )

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, h, h, need_weights=False)[0])
        return x + self.mlp(self.norm2(x))

class ViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 64, 8, stride=8)
        self.pos = nn.Parameter(torch.zeros(1, 16, 64))
        self.pos_drop = nn.Dropout(0.0)
        self.block = Block()
        self.head = nn.Linear(64, 10)

    def forward(self, img):
        x = self.pos_drop(self.embed(img).flatten(2).transpose(1, 2) + self.pos)
        return self.head(self.block(x).mean(1))

def build_model():
    return ViT()

def example_inputs():
    return torch.randn(2, 3, 32, 32)
"""

# Grouped-query attention: 4 query heads share 2 key/value heads; causal (sdpa).
LLAMA_GQA = """
import torch
from transformers import LlamaConfig, LlamaForCausalLM

def build_model():
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, attn_implementation="sdpa")
    return LlamaForCausalLM(config)

def example_inputs():
    return {"input_ids": torch.randint(0, 128, (2, 12))}
"""
