"""tunesmith: transfer learning with transformer language models."""
__version__ = "0.1.0"
