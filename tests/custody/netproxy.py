"""A TCP forwarder on 127.0.0.1 that a test can cut, to make a server vanish mid-run.

Used to take the KMS endpoint (moto) away from one backend in the middle of an
operation without stopping the session's shared moto server.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`cut` drops every connection and
    refuses new ones. Call :meth:`close` when done (it joins the accept thread)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._listener.settimeout(0.05)
        while not self.is_cut():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                if self.is_cut():
                    client.close()
                    continue
                upstream = socket.create_connection(self._target)
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def is_cut(self) -> bool:
        """Whether :meth:`cut` was called."""
        return self._cut

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()
        self._thread.join(timeout=2)
        self._listener.close()

    def close(self) -> None:
        if not self._cut:
            self.cut()
