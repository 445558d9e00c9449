"""Inference: load once, batch by tokens, answer in input order."""
from .predictor import Predictor  # noqa: F401
