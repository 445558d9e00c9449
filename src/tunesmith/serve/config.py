"""The serving config: four sections, YAML (`--config serve.yaml`) plus `--section.key=value` flags."""
from __future__ import annotations

import dataclasses

from ..config import opt
from ..errors import TunesmithError


@dataclasses.dataclass
class ServerConfig:
    host: str = opt("127.0.0.1", "address to bind; non-loopback needs an admin token (or allow_open_admin)")
    port: int = opt(8000, "TCP port")
    admin_token: str | None = opt(None, "bearer token required by the admin endpoints (POST/DELETE "
                                        "/v1/adapters); also read from $TUNESMITH_ADMIN_TOKEN")
    admin_enabled: bool = opt(True, "expose the admin endpoints that load and unload adapters")
    allow_open_admin: bool = opt(False, "allow binding a non-loopback address with admin endpoints "
                                        "open (no token): only behind a trusted proxy")
    shutdown_grace_s: float = opt(30.0, "on shutdown, wait this long for in-flight requests")
    keep_alive_s: float = opt(15.0, "close idle keep-alive connections after this; above the 5 s "
                                    "after which httpx and most client pools drop theirs, so the "
                                    "client closes first (no reset racing a reused connection)")
    drain_linger_s: float = opt(0.5, "on shutdown, keep idle keep-alive connections open this long "
                                     "(requests on them get 503 + Connection: close) before closing them")


@dataclasses.dataclass
class ModelSection:
    base: str | None = opt(None, "base model shared by every LoRA adapter (built-in name or directory); "
                                 "default: the base of the first adapter")
    adapters: list[str] = opt([], "adapters as NAME=RUN_DIR (LoRA runs share the base; full/head "
                                  "runs load as separate models)")
    adapter_root: str = opt(".", "every adapter path must lie inside this directory (no '..', no "
                                 "symlink escape, no absolute path outside it)")
    max_length: int | None = opt(None, "truncate inputs to this many tokens (default: each run's own)")
    device: str | None = opt(None, "auto | cpu | cuda | cuda:N (default auto: cuda when available)")
    dtype: str = opt("auto", "auto | fp32 | bf16 | fp16: precision of every served model. auto is the "
                             "rule `tunesmith predict` uses too (same scores): bf16 on CPUs with "
                             "AVX512-BF16/AMX and GPUs with native bf16, fp16 on older CUDA GPUs, "
                             "else fp32")


@dataclasses.dataclass
class BatchingConfig:
    mode: str = opt("mixed", "mixed: one forward for requests of different adapters (peft per-sample "
                             "adapter_names); grouped: one forward per adapter; sequential: one "
                             "request at a time, switching the active adapter (the naive baseline)")
    max_batch_tokens: int = opt(4096, "a micro-batch closes when its requests hold this many tokens")
    max_wait_ms: float = opt(5.0, "... or when its first request has waited this long")
    max_forward_tokens: int = opt(8192, "padded tokens (count x longest) per forward pass")
    max_queue: int = opt(1024, "inputs waiting at most; beyond it requests get 429 with Retry-After")
    warm_up: bool = opt(True, "run one small batch per LoRA head width at startup: the first real "
                              "batch is then not a cold one, and admission starts from a measured throughput")
    admission_wait_s: float | None = opt(None, "admit a request only while its expected wait (queued "
                                               "inputs / measured inputs per second) is under this; "
                                               "else 429 with Retry-After (default: limits.timeout_s / 3)")


@dataclasses.dataclass
class LimitsConfig:
    max_inputs: int = opt(64, "inputs per request at most (413 beyond)")
    max_chars: int = opt(4096, "characters per input at most (413 beyond)")
    timeout_s: float = opt(30.0, "per-request timeout (504 beyond)")
    max_body_bytes: int = opt(2 * 2**20, "request body bytes at most (413 beyond, checked on Content-Length "
                                         "before reading and counted while a chunked body streams in)")
    body_timeout_s: float = opt(10.0, "a request body must arrive within this (408 beyond): slow senders "
                                      "cannot hold a connection")


MODES = ("mixed", "grouped", "sequential")
DTYPES = ("auto", "fp32", "bf16", "fp16")


@dataclasses.dataclass
class ServeConfig:
    server: ServerConfig = dataclasses.field(default_factory=ServerConfig)
    model: ModelSection = dataclasses.field(default_factory=ModelSection)
    batching: BatchingConfig = dataclasses.field(default_factory=BatchingConfig)
    limits: LimitsConfig = dataclasses.field(default_factory=LimitsConfig)

    def __post_init__(self):
        if str(self.model.dtype).strip().lower() not in DTYPES:
            raise TunesmithError(f"model.dtype '{self.model.dtype}' unknown; use one of {', '.join(DTYPES)}")
        if self.batching.mode not in MODES:
            raise TunesmithError(f"batching.mode '{self.batching.mode}' unknown; use one of {MODES}")
        for name in ("max_batch_tokens", "max_forward_tokens", "max_queue"):
            if getattr(self.batching, name) < 1:
                raise TunesmithError(f"batching.{name} must be at least 1")
        lim = self.limits
        if min(lim.max_inputs, lim.max_chars, lim.max_body_bytes) < 1 or min(lim.timeout_s, lim.body_timeout_s) <= 0:
            raise TunesmithError("limits.max_inputs, max_chars, max_body_bytes, timeout_s and body_timeout_s "
                                 "must be positive")
        wait = self.batching.admission_wait_s
        if wait is not None and not 0 < wait < lim.timeout_s:
            raise TunesmithError(f"batching.admission_wait_s ({wait}) must be above 0 and below "
                                 f"limits.timeout_s ({lim.timeout_s}), or admitted requests would time out")
        parse_adapters(self.model.adapters)


    def admission_wait(self) -> float:
        """The expected-wait bound the batcher admits requests under (a third of the timeout by
        default, so a throughput estimate off by 3x still answers before the timeout)."""
        return self.batching.admission_wait_s or self.limits.timeout_s / 3


def parse_adapters(items: list[str]) -> dict[str, str]:
    """['sentiment=runs/a', 'spam=runs/b'] -> {'sentiment': 'runs/a', 'spam': 'runs/b'}.

    Example:
        >>> parse_adapters(["sentiment=runs/a"])
        {'sentiment': 'runs/a'}
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = str(item).partition("=")
        if not sep or not name.strip() or not path.strip():
            raise TunesmithError(f"adapter '{item}' must look like NAME=RUN_DIR (e.g. sentiment=runs/a)")
        check_name(name.strip())
        if name.strip() in out:
            raise TunesmithError(f"adapter name '{name.strip()}' given twice")
        out[name.strip()] = path.strip()
    return out


def check_name(name: str) -> str:
    """Adapter names become URL segments, metric labels and peft module keys: keep them plain."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}", name or ""):
        raise TunesmithError(f"adapter name {name!r}: use 1-64 letters, digits, '_' or '-' "
                             "(starting with a letter or digit)")
    return name
