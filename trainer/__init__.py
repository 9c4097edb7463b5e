"""catdog trainer: fit a Keras CNN on a photo folder, evaluate it, export and check a TFLite model.

TensorFlow is imported inside the functions that need it, so `catdog-train --help` stays fast.
"""
