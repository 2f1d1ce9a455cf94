"""C code generators: fixed-point weights (fixed_point) and TFLM model sources (tflm)."""
