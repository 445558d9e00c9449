"""Run the app under uvicorn with a shutdown that drains, cuts what would hold it, and exits 0.

uvicorn 0.54's own shutdown has four problems for a server behind a load balancer:
- after a clean shutdown it re-raises the signal, so SIGTERM exits with -15 (143 in a shell)
  and supervisors log a crash;
- a client holding a half-sent body keeps its request task alive for the whole
  `timeout_graceful_shutdown`;
- idle keep-alive connections are closed at once, racing clients that are just sending their
  next request on them (they see a reset, not an answer);
- SIGINT (Ctrl-C) ends up in the CLI's KeyboardInterrupt message about resuming fine-tuning.

`DrainingServer` instead: on the signal, marks the app draining (new `/v1/` requests get 503
with `Connection: close`), stops accepting, cuts request bodies still arriving (503), lets the
requests in flight finish (up to `server.shutdown_grace_s`), keeps idle connections open for
`server.drain_linger_s` so a request already on its way gets a 503 instead of a reset, then
closes everything. `serve()` returns 0 after a clean drain, 1 when requests had to be cancelled.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time

import uvicorn

log = logging.getLogger("uvicorn.error")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DrainingServer(uvicorn.Server):
    """uvicorn.Server with the drain described in the module docstring."""

    def __init__(self, config: uvicorn.Config, state):
        super().__init__(config)
        self.state = state  # the app's State: draining flag, stopping event, config
        self.cancelled = 0

    def handle_exit(self, sig, frame) -> None:
        self.state.draining = True  # from this instant new /v1/ requests get 503 + close
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self):
        """uvicorn's handlers, without re-raising the signal afterwards: the exit status is ours."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets=None) -> None:
        log.info("Shutting down: draining (grace %.0f s)", self.state.cfg.server.shutdown_grace_s)
        self.state.draining = True
        self.state.stopping.set()  # bodies still arriving are cut with 503
        for server in self.servers:
            server.close()  # no new connections
        for sock in sockets or []:
            sock.close()
        t0 = time.monotonic()
        await self._finish_requests(self.state.cfg.server.shutdown_grace_s)
        t1 = time.monotonic()
        await self._close_connections(self.state.cfg.server.drain_linger_s)
        t2 = time.monotonic()
        if not self.force_exit:
            await self.lifespan.shutdown()
        log.info("Drained: requests in flight %.2f s, connections %.2f s, models %.2f s%s", t1 - t0, t2 - t1,
                 time.monotonic() - t2, f"; {self.cancelled} cancelled" if self.cancelled else "")

    async def _finish_requests(self, grace: float) -> None:
        """Wait for the request tasks in flight; cancel what is left when the grace runs out."""
        deadline = time.monotonic() + grace
        while self.server_state.tasks and time.monotonic() < deadline and not self.force_exit:
            await asyncio.sleep(0.01)
        if self.server_state.tasks:
            self.cancelled = len(self.server_state.tasks)
            log.error("Cancelling %d request(s): shutdown grace of %.0f s exceeded", self.cancelled, grace)
            for task in list(self.server_state.tasks):
                task.cancel()

    async def _close_connections(self, linger: float) -> None:
        """Idle connections stay open `linger` seconds (a request arriving gets 503 + close and
        the connection closes after it), then every connection is closed."""
        deadline = time.monotonic() + linger
        while self._idle_connections() and time.monotonic() < deadline and not self.force_exit:
            await asyncio.sleep(0.01)
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle: close now; mid-response: close after it
        deadline = time.monotonic() + 1.0
        while self.server_state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def _idle_connections(self) -> list:
        return [c for c in self.server_state.connections
                if getattr(c, "cycle", None) is None or getattr(c.cycle, "response_complete", True)]


def serve(app, cfg) -> int:
    """Run `app` until SIGTERM/SIGINT; 0 after a clean drain, 1 when requests were cancelled."""
    config = uvicorn.Config(app, host=cfg.server.host, port=cfg.server.port, log_level="info",
                            timeout_graceful_shutdown=int(cfg.server.shutdown_grace_s),
                            timeout_keep_alive=int(cfg.server.keep_alive_s))
    server = DrainingServer(config, app.state.tunesmith)
    server.run()
    if not server.started:
        return 1  # startup failed (uvicorn logged why)
    return 1 if server.cancelled else 0
