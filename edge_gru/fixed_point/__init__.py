"""The fixed-point GRU: quantization scheme, bit-exact NumPy model, LUTs, firmware drivers.

``scheme.quantize(weights)`` gives the integer tensors, ``model`` runs them exactly as
``firmware/src/edge_gru.c`` does, ``firmware`` builds the C, ``qemu`` runs the Cortex-M4
image and ``device`` speaks its UART protocol (QEMU socket or a board's serial port).
"""

from .scheme import QuantizedGru, quantize

__all__ = ["QuantizedGru", "quantize"]
