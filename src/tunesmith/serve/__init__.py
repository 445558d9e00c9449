"""Serve one base model with many adapters over HTTP (FastAPI + uvicorn).

    config.py    ServeConfig: server / model / batching / limits sections
    security.py  adapter-root confinement, safetensors-only checks, bearer token, bind rules
    registry.py  the engine: one base model, many named peft adapters, plus whole models
    batcher.py   micro-batcher: token budget or wait, one model thread, admission by expected wait
    metrics.py   Prometheus text-format counters, gauges and histograms
    app.py       create_app(config): the HTTP layer (decode -> batcher -> encode)
    guard.py     ASGI gate before the body is read: size limit, admin token, JSON content type, drain
    runner.py    uvicorn with a drain that cuts slow bodies, spares keep-alive clients, exits 0
    memory.py    glibc allocator settings and a periodic malloc_trim (flat resident memory)
    docs.py      /docs: Swagger UI from local files (fastapi-offline), no CDN
"""
