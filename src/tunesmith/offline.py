"""Network switches. tunesmith never downloads at run time unless the user opts in.

Built-ins are read from installed packages; hub ids still go through the real
`from_pretrained` code, which with these switches uses only the local cache.
"""
import os

_SWITCHES = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
             "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}


def set_offline() -> None:
    """Turn on the offline switches unless TUNESMITH_ALLOW_DOWNLOADS=1 is set."""
    allow = os.environ.get("TUNESMITH_ALLOW_DOWNLOADS") == "1"
    for key, value in _SWITCHES.items():
        if allow and key != "TOKENIZERS_PARALLELISM":
            continue
        os.environ.setdefault(key, value)


def quiet_libraries() -> None:
    """Keep library chatter (load reports, weight-loading bars) out of the CLI output.

    Without importing transformers (seconds, and `--help` or `tunesmith models` never needs it):
    the environment switches are read when it is first imported; a library already imported is
    told directly."""
    import sys
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars follow the hub's
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
