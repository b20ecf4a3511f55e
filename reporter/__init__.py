"""perfreport: one report on a PyTorch model's size, cost, speed and bottlenecks."""

__version__ = "0.1.0"
