"""The HTTP/1.1 protocol to serve the gateway with: ``uvicorn.Config(app, http=...)``.

uvicorn's httptools protocol, except for one thing: a request that offers an upgrade uvicorn
cannot perform — ``Connection: Upgrade, HTTP2-Settings`` and ``Upgrade: h2c``, which Java's
default ``HttpClient`` (the seed's Java example) and ``curl --http2`` send with the first
request of every plain-http connection — is served as the HTTP/1.1 request it also is, body
and all, and the connection stays usable.

Why it needs a protocol of its own: httptools tells llhttp to skip the body of any request
that asks to upgrade (the bytes after its head belong to the new protocol), so the request is
complete, with an empty body, as soon as its head is parsed; uvicorn, which performs only
WebSocket upgrades, starts the application on that empty request ("Unsupported upgrade
request.") and drops the body. The send was answered 1004 ("not valid UTF-8 JSON"), and the
parser, stuck in its upgraded state, dropped every later request on the connection. Nothing
at the ASGI level can help: the body never reaches the application.

RFC 9110 §7.8 lets a server ignore an ``Upgrade`` it does not want. So here: when the head
of a request offers an upgrade other than a WebSocket one, the application is not started;
the head is parsed again by a fresh parser without the upgrade headers (``Upgrade``,
``HTTP2-Settings``, and their tokens in ``Connection``: hop-by-hop, meant for this server
only), followed by the bytes after it — the body, then any later request — and from there on
everything is uvicorn's own path (keep-alive, pipelining, flow control, ``Expect``).
h11, uvicorn's other HTTP/1.1 protocol, reads such a body correctly, but costs the gateway
about 40 % more CPU per send than httptools (0.77 against 0.55 ms, 16 concurrent sends on
the 2-core machine), and a campaign is ten thousand sends.

The methods overridden are uvicorn's (0.55) private ones; ``tests/gateway/test_http_upgrade.py``
holds the behaviour against the installed version, through both hosts the tests start.
"""

from __future__ import annotations

import contextlib

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Removed from a declined upgrade's head: the offer itself and its HTTP/2 settings.
_UPGRADE_HEADERS = frozenset({b"upgrade", b"http2-settings"})


def new_parser(protocol: HttpToolsProtocol) -> httptools.HttpRequestParser:
    """A request parser set up as ``HttpToolsProtocol.__init__`` sets up its own."""
    parser = httptools.HttpRequestParser(protocol)
    with contextlib.suppress(AttributeError):  # httptools < 0.6.3 has no leniencies
        parser.set_dangerous_leniencies(lenient_data_after_close=True)
    return parser


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; an upgrade it cannot perform is declined (see above)."""

    # The head of a request whose upgrade is being declined, without its upgrade headers:
    # set when the head is complete, used once llhttp stops at the end of it.
    _declined_head: bytes | None = None

    def _declines_upgrade(self) -> bool:
        # An Upgrade header with "upgrade" in Connection, for anything but a WebSocket
        # uvicorn can serve. (CONNECT also stops llhttp, without an Upgrade header: that
        # stays uvicorn's business, and stripping could not change it anyway.)
        # llhttp sees "upgrade" in any Connection header, uvicorn's _get_upgrade only in the
        # last one: with Connection split over two lines (Upgrade, then keep-alive) uvicorn
        # saw no upgrade while llhttp skipped the body. So: any Upgrade header at all.
        return (
            self.parser.should_upgrade()
            and any(name == b"upgrade" for name, _ in self.headers)
            and not self._should_upgrade()
        )

    def _head_without_upgrade(self) -> bytes:
        version = self.parser.get_http_version().encode("ascii")
        lines = [self.parser.get_method() + b" " + self.url + b" HTTP/" + version]
        for name, value in self.headers:
            if name in _UPGRADE_HEADERS:
                continue
            if name == b"connection":
                tokens = [t.strip() for t in value.split(b",")]
                kept = [t for t in tokens if t and t.lower() not in _UPGRADE_HEADERS]
                if not kept:
                    continue
                value = b", ".join(kept)
            lines.append(name + b": " + value)
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def on_headers_complete(self) -> None:
        if self._declines_upgrade():
            self._declined_head = self._head_without_upgrade()
            return  # the application starts when the head is parsed again
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._declined_head is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._declined_head is None:
            super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        while True:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            except httptools.HttpParserUpgrade as exc:
                declined, self._declined_head = self._declined_head, None
                if declined is None:  # a WebSocket upgrade (or CONNECT): as uvicorn does it
                    if self._should_upgrade():
                        self.handle_websocket_upgrade()
                    else:
                        self._unsupported_upgrade_warning()
                    return
                # llhttp stopped right after the head (args[0]: where, in this chunk).
                self.parser = new_parser(self)
                data = declined + data[exc.args[0] :]
                continue
            return
