"""Host runners for ``.tflite`` models: LiteRT (three op-resolver modes) and TFLite Micro."""
