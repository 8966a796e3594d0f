"""Serve a built book's HTML on 127.0.0.1, the way a student's browser meets it, and stop cleanly.

A plain `http.server` in a thread: no network beyond loopback, a free port picked by the kernel, quiet logs.
    with BookServer(Path("_build/html")) as server:
        print(server.url)            # http://127.0.0.1:PORT/
"""
from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass  # a page load is dozens of requests; the tests report what matters


class BookServer:
    """An HTTP server for one folder of HTML, bound to 127.0.0.1 on a free port."""

    def __init__(self, html_dir: Path) -> None:
        if not (html_dir / "index.html").is_file():
            raise FileNotFoundError(f"{html_dir} holds no index.html: build the book first (jupyter-book build .)")
        self.html_dir = html_dir
        handler = functools.partial(_QuietHandler, directory=str(html_dir))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="book-server", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> BookServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
