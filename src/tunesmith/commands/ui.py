"""`tunesmith ui`: a local web app from data to a served model (Data, Choose, Train, Report, Try, Serve)."""
from __future__ import annotations

import argparse
import os
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "ui", help="local web app: data, advice and config, training with live curves, reports, try, serve",
        description="Serve the tunesmith web app on 127.0.0.1. It runs the same core as the CLI: jobs are "
                    "`tunesmith finetune/compare/serve` in child processes, every run lives in the runs folder "
                    "(a restarted UI finds them all), and every setting shows its CLI command and YAML. "
                    "Nothing is fetched from the network: pages, scripts and styles come from the package.",
        epilog="examples:\n  tunesmith ui                      # http://127.0.0.1:7860\n"
               "  tunesmith ui --port 8080 --runs experiments\n"
               "  tunesmith ui --host 0.0.0.0 --token SECRET   # then open http://HOST:7860/?token=SECRET",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to bind; beyond loopback a token is required "
                   "[default: 127.0.0.1]")
    p.add_argument("--port", type=int, default=7860, help="TCP port [default: 7860]")
    p.add_argument("--token", default=None, help="require this token (open /?token=...; API: Authorization: "
                   "Bearer ...); also read from $TUNESMITH_UI_TOKEN")
    p.add_argument("--runs", default="runs", help="folder of the run directories, relative to the current "
                   "directory [default: runs]")
    p.set_defaults(func=run)


def run(args) -> int:
    import uvicorn

    from ..ui.app import UIConfig, create_app

    cfg = UIConfig(workspace=os.getcwd(), runs=args.runs, host=args.host, port=args.port,
                   token=args.token or os.environ.get("TUNESMITH_UI_TOKEN") or None)
    app = create_app(cfg)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"tunesmith ui: http://{shown}:{args.port}/" + (f"?token={cfg.token}" if cfg.token else "")
          + f"  (runs in {cfg.runs_dir}; Ctrl-C stops the UI, jobs keep running)", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its clean shutdown
        pass
    print("tunesmith ui: stopped (jobs it started keep running; a new UI finds them)", file=sys.stderr)
    return 0
