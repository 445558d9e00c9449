"""Choosing a strategy with numbers: parameter counts from a config, memory estimates, a short
measured probe, the advice built on them, and the side-by-side comparison of methods."""
