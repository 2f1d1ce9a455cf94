"""Frontends: a framework's model -> :class:`~edge_gru.ir.ModelIR`. Keras is the one today."""

from .keras import from_keras, infer_task

__all__ = ["from_keras", "infer_task"]
