"""edge_gru: a Keras GRU text classifier taken to microcontrollers and small Linux boards,
with the accuracy drift of every stage measured against the float model."""

__version__ = "0.1.0"
