"""AsyncKedaClient's two ways out: aiohttp directly on asyncio, httpx otherwise.

Each scenario runs twice against the same scripted HTTP server on loopback — once with the
default client (the aiohttp path) and once with ``transport=httpx.AsyncHTTPTransport()`` (the
httpx path) — and both runs must send the same requests and come to the same result or the
same error, with the same retries.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from kedacore import AsyncKedaClient, envelope
from kedacore.api.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    InternalServerError,
    RateLimitError,
    ValidationError,
)

pytestmark = pytest.mark.anyio

API_KEY = "ak_test_0a9b8c7d6e5f4321"
ENC_KEY = envelope.generate_key()
TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CALLBACK = f"https://hooks.example.com/hooks/keda/{TOKEN}"

SEND_OK = {
    "code": "0",
    "message": "Success",
    "data": {
        "taskId": "20240408-0001",
        "debitedAmount": Decimal("0.048"),
        "currency": "USD",
        "segments": 1,
        "messages": [{"msgid": "msg_abc123def456", "recipient": "+8613800138000"}],
    },
}
BALANCE_OK = {"code": "0", "message": "Success", "data": {"balance": "12.5", "frozen": "0.048"}}


@dataclass
class Answer:
    """What the scripted server answers to one request (or, with ``hang``, does not)."""

    status: int = 200
    body: bytes | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before closing the connection without answering
    gzip: bool = False


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Script:
    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.seen: list[Seen] = []

    def load(self, answers: list[Answer]) -> None:
        self.answers, self.seen = list(answers), []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as KedaSMS
    server: ScriptedServer

    def do_GET(self) -> None:
        self._answer()

    do_POST = do_PUT = do_GET

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        script = self.server.script
        script.seen.append(Seen(self.command, self.path, headers, body))
        answer = script.answers.pop(0) if script.answers else Answer(500, b"script exhausted")
        if answer.hang:
            time.sleep(answer.hang)
            self.close_connection = True
            return
        content = answer.body
        if isinstance(content, dict):
            content = json.dumps(content, default=str).encode()
        extra = {"Content-Type": "application/json", **answer.headers}
        if answer.gzip:
            content = gzip.compress(content)
            extra["Content-Encoding"] = "gzip"
        self.send_response(answer.status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = Script()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEDA_API_KEY", "KEDA_ENCRYPTION_KEY", "KEDA_BASE_URL", "KEDA_BACKUP_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


PATHS = ("aiohttp", "httpx")


def make(url: str, path: str, **options: Any) -> tuple[AsyncKedaClient, list[float]]:
    """A client on the given path whose retries never sleep for real (and never jitter)."""
    if path == "httpx":
        options["transport"] = httpx.AsyncHTTPTransport()
    client = AsyncKedaClient(API_KEY, ENC_KEY, base_url=url, backup_url=url, **options)
    assert (client._aio is not None) == (path == "aiohttp")
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client._sleep = sleep
    client._jitter = lambda: 0.0
    return client, sleeps


def outcome(result: object) -> object:
    """What must be equal between the paths: the result, or everything an error shows."""
    if not isinstance(result, Exception):
        return result
    shown = {"type": type(result), "str": str(result), "repr": repr(result)}
    if isinstance(result, APIError):
        shown |= {
            "code": result.code,
            "http_status": result.http_status,
            "retry_after": result.retry_after,
            "details": result.details,
            "method": result.method,
            "url": result.url,
        }
    if isinstance(result, APIConnectionError):
        shown |= {"method": result.method, "url": result.url}
    return shown


def request_shape(seen: Seen) -> dict[str, Any]:
    """A request as both paths must send it (the envelope opened: its IV differs each time)."""
    headers = {k: seen.headers.get(k) for k in ("user-agent", "accept", "content-type")}
    headers["x-api-key"] = seen.headers.get("x-api-key")
    body: Any = json.loads(seen.body) if seen.body else None
    if isinstance(body, dict) and "cipherText" in body:
        body = {"apiKey": body["apiKey"], "payload": json.loads(envelope.open_body(body, ENC_KEY))}
    return {"method": seen.method, "path": seen.path, "headers": headers, "body": body}


Call = Callable[[AsyncKedaClient], Awaitable[object]]


async def run_on(server: ScriptedServer, path: str, answers: list[Answer], call: Call, **options):
    server.script.load(answers)
    client, sleeps = make(server.url, path, **options)
    async with client:
        try:
            result: object = await call(client)
        except Exception as exc:
            result = exc
    return result, sleeps, [request_shape(s) for s in server.script.seen]


async def both(server: ScriptedServer, answers: list[Answer], call: Call, **options):
    """The scenario on each path; asserts they agree and returns the aiohttp path's run."""
    runs = [await run_on(server, path, answers, call, **options) for path in PATHS]
    (result, sleeps, seen), (h_result, h_sleeps, h_seen) = runs
    assert outcome(result) == outcome(h_result)
    assert sleeps == h_sleeps
    assert seen == h_seen
    return result, sleeps, seen


def send(client_ref: str | None = None, callback_url: str | None = None) -> Call:
    def call(client: AsyncKedaClient) -> Awaitable[object]:
        return client.sms.send(
            "CN", ["13800138000"], "您的验证码为 123456", sender_id="KedaSMS",
            client_ref=client_ref, callback_url=callback_url,
        )  # fmt: skip

    return call


async def test_a_send_is_the_same_request_and_result_on_both_paths(server) -> None:
    result, sleeps, seen = await both(server, [Answer(body=SEND_OK)], send("ref-1"))
    assert result.debited_amount == Decimal("0.048") and sleeps == []
    assert seen[0]["path"] == "/api/sms/send" and seen[0]["headers"]["x-api-key"] is None
    assert seen[0]["body"]["payload"]["clientRef"] == "ref-1"
    assert seen[0]["headers"]["user-agent"].startswith("kedacore/")


async def test_a_query_and_an_api_key_header_are_sent_alike(server) -> None:
    answer = Answer(body={"success": True, "code": 200, "data": {
        "msgid": "msg 1/ä", "status": "DELIVERED", "recipient": "+1"}})  # fmt: skip
    result, _, seen = await both(server, [answer], lambda c: c.sms.status("msg 1/ä&x=1"))
    assert result.status == "DELIVERED"
    assert seen[0]["path"].startswith("/api/sms/status?msgid=msg")
    assert seen[0]["headers"]["x-api-key"] == API_KEY


async def test_a_put_carries_the_key_in_header_and_body_alike(server) -> None:
    limits = {"dailySmsCap": 10, "dailySpendCap": 1.5, "alertThreshold": 0.8,
              "blockOnLimit": True, "usage": {}, "alert": {}}  # fmt: skip
    answer = Answer(body={"code": "0", "message": "Success", "data": limits})
    call: Call = lambda c: c.limits.update(daily_spend_cap=Decimal("1.50"))  # noqa: E731
    result, _, seen = await both(server, [answer], call)
    assert seen[0]["method"] == "PUT" and seen[0]["body"]["apiKey"] == API_KEY
    assert seen[0]["body"]["dailySpendCap"] == 1.5
    assert result.daily_spend_cap == Decimal("1.5")


async def test_a_5000_answer_is_an_internal_server_error_retried_only_with_a_client_ref(
    server,
) -> None:
    failure = Answer(500, {"code": "5000", "message": "database is locked", "data": None})
    result, sleeps, seen = await both(server, [failure], send())
    assert isinstance(result, InternalServerError) and result.code == "5000"
    assert sleeps == [] and len(seen) == 1  # no clientRef: a repeat could send twice
    result, sleeps, seen = await both(server, [failure] * 3, send("ref-2"))
    assert isinstance(result, InternalServerError) and sleeps == [0.5, 1.0] and len(seen) == 3


async def test_a_4029_waits_as_told_then_succeeds(server) -> None:
    limited = Answer(429, {"code": "4029", "message": "slow down"}, {"Retry-After": "2"})
    result, sleeps, seen = await both(server, [limited, Answer(body=SEND_OK)], send("ref-3"))
    assert result.task_id == "20240408-0001" and sleeps == [2.0] and len(seen) == 2
    assert seen[0]["body"] == seen[1]["body"]  # the same payload, sealed afresh


async def test_a_4029_with_a_long_retry_after_goes_to_the_caller(server) -> None:
    limited = Answer(429, {"code": "4029", "message": "slow down"}, {"Retry-After": "120"})
    result, sleeps, _ = await both(server, [limited], send("ref-4"))
    assert isinstance(result, RateLimitError) and result.retry_after == 120.0 and sleeps == []


async def test_a_compressed_refusal_is_read_and_its_secrets_masked_alike(server) -> None:
    refusal = {"code": "2001", "message": f"bad callbackUrl {CALLBACK}", "data": {
        "errors": [{"field": "callbackUrl", "message": "refused", "value": CALLBACK}]}}  # fmt: skip
    result, _, _ = await both(server, [Answer(422, refusal, gzip=True)], send(None, CALLBACK))
    assert isinstance(result, ValidationError) and result.errors[0]["field"] == "callbackUrl"
    assert TOKEN not in str(result) and TOKEN not in repr(result.details)


async def test_an_html_page_and_a_redirect_are_reported_alike(server) -> None:
    page = Answer(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                  {"Content-Type": "text/html"})  # fmt: skip
    result, sleeps, _ = await both(server, [page] * 3, lambda c: c.account.balance())
    assert isinstance(result, InternalServerError) and "502 Bad Gateway" in str(result)
    assert sleeps == [0.5, 1.0]
    moved = Answer(301, b"", {"Location": "https://elsewhere.example/api/sms/send"})
    result, _, seen = await both(server, [moved], send())
    assert "elsewhere.example" in str(result) and len(seen) == 1  # not followed


async def test_an_answer_kedacore_cannot_read_is_an_api_error_alike(server) -> None:
    odd = Answer(body={"code": "0", "message": "Success", "data": {"taskId": 5}})
    result, _, _ = await both(server, [odd], send())
    assert type(result) is APIError and "cannot read" in str(result)


async def test_a_timeout_is_an_api_timeout_error_retried_alike(server) -> None:
    hang = Answer(hang=1.0)
    result, sleeps, seen = await both(
        server, [hang, hang], lambda c: c.account.balance(), timeout=0.3, max_retries=1
    )
    assert isinstance(result, APITimeoutError) and sleeps == [0.5] and len(seen) == 2


async def test_a_refused_connection_is_an_api_connection_error_retried_alike() -> None:
    closed = ScriptedServer()
    url = closed.url
    closed.server_close()  # nothing listens on the port any more
    runs = []
    for path in PATHS:
        client, sleeps = make(url, path, max_retries=2)
        async with client:
            with pytest.raises(APIConnectionError) as info:
                await client.account.balance()
        runs.append((type(info.value), info.value.method, info.value.url, sleeps))
        assert info.value.reason  # what the library said, e.g. "Connect call failed"
    assert runs[0] == runs[1]
    assert runs[0][0] is APIConnectionError and runs[0][3] == [0.5, 1.0]  # not a timeout


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


async def test_a_malformed_answer_keeps_no_key_or_query_in_the_error_chain() -> None:
    """aiohttp's response errors hold the request's headers: none of that may reach the error."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_garbage() -> None:
        for _ in range(len(PATHS)):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n{}")
            conn.close()

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        for path in PATHS:
            client, _sleeps = make(f"http://127.0.0.1:{port}/api", path, max_retries=0)
            async with client:
                with pytest.raises(APIConnectionError) as info:
                    await client.sms.status("msg_0123456789abcdef")
            for exc in _chain(info.value):
                shown = f"{exc!r} {exc}"  # what a log line or an error tracker shows
                assert API_KEY not in shown and "msg_0123456789abcdef" not in shown, path
    finally:
        thread.join(timeout=5)
        listener.close()


async def test_the_default_client_sends_over_aiohttp_not_httpx(server) -> None:
    server.script.load([Answer(body=BALANCE_OK)])
    client, _ = make(server.url, "aiohttp")

    async def no_httpx(*args: Any, **kwargs: Any) -> httpx.Response:
        raise AssertionError("the default client sent through httpx")

    client._http.send = no_httpx  # type: ignore[method-assign]
    async with client:
        balance = await client.account.balance()
    assert balance.balance == Decimal("12.5") and len(server.script.seen) == 1


async def test_with_a_transport_every_request_goes_through_it() -> None:
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=json.dumps(BALANCE_OK).encode())

    client = AsyncKedaClient(API_KEY, ENC_KEY, transport=httpx.MockTransport(reply))
    assert client._aio is None
    async with client:
        await client.account.balance()
    assert len(seen) == 1


async def test_behind_a_proxy_from_the_environment_the_client_keeps_to_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    async with AsyncKedaClient(API_KEY, ENC_KEY) as client:
        assert client._aio is None
    monkeypatch.delenv("HTTPS_PROXY")
    async with AsyncKedaClient(API_KEY, ENC_KEY) as client:
        assert client._aio is not None


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_under_trio_the_default_client_goes_through_httpx(server) -> None:
    server.script.load([Answer(body=BALANCE_OK), Answer(body=SEND_OK)])
    client, _ = make(server.url, "aiohttp")  # the default client: it has an aiohttp path…
    async with client:
        balance = await client.account.balance()
        result = await client.sms.send("CN", ["13800138000"], "hi")
        assert client._aio is not None and client._aio._session is None  # …unused on trio
    assert balance.frozen == Decimal("0.048") and result.messages[0].msgid == "msg_abc123def456"
    assert [s.path for s in server.script.seen] == [
        "/api/external/accounts/balance",
        "/api/sms/send",
    ]
