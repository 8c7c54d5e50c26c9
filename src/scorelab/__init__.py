"""scorelab: score-based generative models as swappable, tested components."""

__version__ = "0.1.0"
