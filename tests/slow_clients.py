"""Slow clients against a running service, on loopback: connections that trickle a request.

  headers  half a request's headers at once, then one byte per second
  body     full headers of POST /token with Content-Length: 1000, 6 bytes of
           body, then 3 more bytes per second
  silent   connect and send nothing
  authbody like body, but PATCH /me with an Authorization: Bearer token
           (a guarded route: its guard's query would run before the body is read)

A connection the server closes is opened again, as an attacker would.
`probe` times one GET /health on a connection of its own.
"""

import socket
import time

HALF_HEADERS = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowclients\r\nX-Slow: "
BODY_HEADERS = (
    b'POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"user'
)


def probe(host, port, deadline):
    """(ok, seconds, detail) for one GET /health on a new connection."""
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=deadline) as sock:
            sock.settimeout(max(0.01, deadline - (time.monotonic() - start)))
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                remaining = deadline - (time.monotonic() - start)
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        elapsed = time.monotonic() - start
        status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "no answer"
        return status == "200", elapsed, status
    except TimeoutError:
        return False, time.monotonic() - start, "timeout"
    except OSError as exc:
        return False, time.monotonic() - start, type(exc).__name__


class SlowClients:
    def __init__(self, host, port, mode, count, token=None):
        self.host, self.port, self.mode, self.count = host, port, mode, count
        self.auth_head = (
            b"PATCH /me HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\n"
            b"Authorization: Bearer " + (token or "").encode() + b"\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: 1000\r\n"
            b"\r\n"
            b'{"name'
        )
        self.socks = []
        self.opened = 0
        self.closed_by_server = 0

    def _open(self):
        sock = socket.create_connection((self.host, self.port), timeout=2)
        sock.setblocking(False)
        if self.mode == "headers":
            sock.send(HALF_HEADERS)
        elif self.mode == "body":
            sock.send(BODY_HEADERS)
        elif self.mode == "authbody":
            sock.send(self.auth_head)
        self.opened += 1
        return sock

    def start(self):
        self.socks = [self._open() for _ in range(self.count)]

    def tick(self):
        """Send the next trickle; reopen connections the server closed."""
        payload = {"headers": b"a", "body": b"abc", "authbody": b"abc", "silent": b""}[self.mode]
        for i, sock in enumerate(self.socks):
            alive = True
            try:
                sock.recv(4096)  # b"" (closed) or an answer (400, 408...): the server let go
                alive = False
            except BlockingIOError:
                pass
            except OSError:
                alive = False
            if alive and payload:
                try:
                    sock.send(payload)
                except OSError:
                    alive = False
            if not alive:
                self.closed_by_server += 1
                sock.close()
                try:
                    self.socks[i] = self._open()
                except OSError:
                    pass

    def close(self):
        for sock in self.socks:
            sock.close()
