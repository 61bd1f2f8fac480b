"""search serve: the HTTP API and web page."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket

import click

from .common import (
    backend_option,
    cli,
    display_path,
    handle_errors,
    index_option,
    precision_option,
    reader_option,
    rerank_options,
)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@cli.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback lets other machines read the index.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option("--threads", type=click.IntRange(1), help="Threads the models use per request. Default: one per core.")
@reader_option
@rerank_options
@precision_option
@backend_option
@handle_errors
def serve(index_path, host, port, threads, reader_model, rerank_model, rerank_depth, precision, backend):
    """Serve the index over HTTP: a web page at / and a JSON API (its reference at /docs).

    Read-only; the models load once. While `search index` writes to the index from another
    process, the server answers from the last commit and picks up each new one.
    """
    import uvicorn

    from ..server import ServedIndex, Unavailable, create_app

    try:  # the port first: a clear error before the models load
        listening = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is in use (another server?); choose another --port"
        else:
            reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else "not a host name or address of this machine"
        raise click.ClickException(f"Cannot listen on {host} port {port}: {reason}.") from exc
    served = ServedIndex(index_path, reader=reader_model, precision=precision, backend=backend, threads=threads,
                         reranker=rerank_model, rerank_depth=rerank_depth)
    if not _loopback(host):
        click.echo(f"Warning: listening on {host}: anyone who can reach this machine can search the index"
                   " (there is no authentication).", err=True)
    click.echo(f"Loading the models for {display_path(str(served.path))}...", err=True)
    try:
        served.warm()
    except Unavailable as exc:
        click.echo(f"{exc} Serving anyway: requests answer 503 until it can be read.", err=True)
    app = create_app(served)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Serving on http://{shown}:{port}/  (API reference: /docs; Ctrl-C stops)", err=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listening])
