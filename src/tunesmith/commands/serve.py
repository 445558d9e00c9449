"""`tunesmith serve --base minilm --adapter NAME=RUN_DIR ...`: one base model, many adapters, over HTTP."""
from __future__ import annotations

import argparse
import sys

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
               "  open http://127.0.0.1:8000/docs (Swagger UI, served locally) for the OpenAPI schema\n"
               "SIGTERM or Ctrl-C drains: new requests get 503, those in flight finish, exit status 0.")
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
    """Serve until SIGTERM/SIGINT; exit 0 after a clean drain (see serve/runner.py)."""
    from ..serve.app import create_app
    from ..serve.memory import configure_allocator
    from ..serve.runner import serve

    configure_allocator()  # before the model loads and torch starts its threads
    cfg = build_config(args)
    app = create_app(cfg)
    try:
        status = serve(app, cfg)
    except KeyboardInterrupt:  # a second Ctrl-C while draining, or one before uvicorn took the signals
        print("\nserve: interrupted, server stopped", file=sys.stderr)
        return 130
    exit_now(status)
    return status


def exit_now(status: int) -> None:
    """End the process once the drain is over, skipping interpreter teardown.

    Nothing is left to finalize (responses sent, model thread joined, logs flushed below), and
    tearing down torch & co. took ~9 s after the drain on the loaded 2-core machine: time a
    supervisor waits for, for nothing.
    """
    import logging
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
