"""Serve one base model with many adapters over HTTP (FastAPI + uvicorn).

    config.py    ServeConfig: server / model / batching / limits sections
    security.py  adapter-root confinement, safetensors-only checks, bearer token, bind rules
    registry.py  the engine: one base model, many named peft adapters, plus whole models
    batcher.py   micro-batcher: collect requests up to a token budget or a wait, one model thread
    metrics.py   Prometheus text-format counters, gauges and histograms
    app.py       create_app(config): the HTTP layer (decode -> batcher -> encode)
"""
