"""Adaptation methods: each reduces to "which parameters train".

`registry.REGISTRY` is the one place that lists what exists: one `Method` record per method
(apply function, default lr, description, peft?, mergeable, servable, formula, save/load, card).
"""
from .methods import head_module_names  # noqa: F401
from .params import param_table, format_param_table  # noqa: F401
from .registry import MERGEABLE, METHODS, PEFT_METHODS, REGISTRY, apply_method, get  # noqa: F401
