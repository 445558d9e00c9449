"""Adaptation methods: each reduces to "which parameters train".

`METHODS` is the one place that lists what exists; each entry is a plain function
`(model, MethodConfig, task) -> model`.
"""
from .methods import MERGEABLE, METHODS, PEFT_METHODS, apply_method, head_module_names  # noqa: F401
from .params import param_table, format_param_table  # noqa: F401
