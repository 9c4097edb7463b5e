"""catdog trainer: fit a Keras CNN on a photo folder, evaluate it, export and check a TFLite model.

TensorFlow is imported in one place (trainer._tf), on first use, so `catdog-train --help` stays fast
and an install without it gets one clear line.
"""
