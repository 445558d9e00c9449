"""`tunesmith serve --base minilm --adapter NAME=RUN_DIR ...`: one base model, many adapters, over HTTP."""
from __future__ import annotations

import argparse

from .options import add_config_flags, load_config

ALIASES = {"base": "model.base", "host": "server.host", "port": "server.port",
           "adapter-root": "model.adapter_root", "admin-token": "server.admin_token"}


def register(sub) -> None:
    from ..serve.config import ServeConfig

    p = sub.add_parser(
        "serve", help="HTTP server: one base model, many adapters, micro-batching, limits, metrics",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  tunesmith serve --base minilm --adapter sentiment=runs/a --adapter spam=runs/b\n"
               "  tunesmith serve --config serve.yaml --batching.max_wait_ms=2\n"
               "  curl -s localhost:8000/v1/predict -d '{\"adapter\": \"spam\", \"inputs\": [\"WIN a prize\"]}'\n"
               "  open http://127.0.0.1:8000/docs for the OpenAPI schema")
    p.add_argument("--adapter", action="append", default=[], metavar="NAME=RUN_DIR",
                   help="serve this run under NAME (repeatable); LoRA runs share the base model")
    add_config_flags(p, ServeConfig, {f"{k}": v for k, v in ALIASES.items()})
    p.set_defaults(func=run, accepts_overrides=True)


def build_config(args):
    from ..serve.config import ServeConfig

    cfg = load_config(args, ServeConfig)
    cfg.model.adapters = list(cfg.model.adapters) + list(args.adapter)
    cfg.__post_init__()  # re-check the merged adapter list
    return cfg


def run(args) -> int:
    import uvicorn

    from ..serve.app import create_app

    cfg = build_config(args)
    app = create_app(cfg)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):  # new requests get 503 while in-flight ones finish
            app.state.tunesmith.draining = True
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=cfg.server.host, port=cfg.server.port, log_level="info",
                            timeout_graceful_shutdown=int(cfg.server.shutdown_grace_s))
    Server(config).run()
    return 0
