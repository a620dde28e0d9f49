"""`python -m apps`: serve the Gradio app (on 127.0.0.1 unless --host says otherwise).

SIGTERM (a service manager, `kill`) ends the app the way Ctrl+C does: exit handlers run, so the
app's temp folder of results goes with it.
"""

from __future__ import annotations

import os
import signal
import sys

from pipelines.core.allocator import keep_freed_memory
from pipelines.core.cli import ArgumentParser, quiet_libraries, run_cli
from pipelines.core.errors import UserError

from .app import build_app, launch
from .models import default_registry


def parse_args(argv=None):
    p = ArgumentParser(prog="python -m apps", description="ditkit's Gradio app: text to image, video and 3D.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; a busy port is an error)")
    p.add_argument("--share", action="store_true", help="also publish a temporary public gradio.live link")
    p.add_argument("--model-dir", action="append", default=[], metavar="DIR",
                   help="add every pipeline folder (model_index.json) under DIR to the model picker; repeatable")
    p.add_argument("--concurrency", type=int, default=2,
                   help="requests generating at once (at most one per model); the rest wait in the queue")
    p.add_argument("--queue-size", type=int, default=64, help="requests that may wait before new ones are refused")
    return p.parse_args(argv)


def exit_on_sigterm(signum, frame) -> None:
    """SIGTERM → SystemExit in the main thread, so atexit handlers (the temp folder) run."""
    sys.exit(128 + signum)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    def body() -> int:
        if args.concurrency < 1 or args.queue_size < 1:
            raise UserError("--concurrency and --queue-size must be at least 1")
        quiet_libraries()
        keep_freed_memory()
        signal.signal(signal.SIGTERM, exit_on_sigterm)
        demo = build_app(default_registry(args.model_dir), concurrency=args.concurrency, queue_size=args.queue_size)
        try:
            launch(demo, host=args.host, port=args.port, share=args.share)
        except OSError as err:  # the port is taken, the host cannot be bound …
            raise UserError(str(err).strip().splitlines()[0]) from None
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
