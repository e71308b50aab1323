"""A request that offers HTTP/2 (``Upgrade: h2c``) is served as the HTTP/1.1 request it is.

Java's default ``HttpClient`` (the seed's Java example) and ``curl --http2`` offer the upgrade
on every plain-http request, body included. The gateway does not speak HTTP/2; it must
answer such a request over HTTP/1.1 with its body read, and keep the connection usable.
Both ways the tests serve it are checked: uvicorn in a thread (``gateway_factory``) and
``python -m gateway serve`` in its own process (``gateway_process``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kedacore.envelope import seal
from tests.support import REPO_ROOT, GatewayHandle, phone_numbers

# What curl and Java send with the first request of a plain-http connection (RFC 7540 §3.2).
H2C = {
    "Connection": "Upgrade, HTTP2-Settings",
    "Upgrade": "h2c",
    "HTTP2-Settings": "AAEAAEAAAAIAAAAAAAMAAAAAAAQAAP__AAUAAEAAAAYAAAAA",
}


@dataclass(frozen=True)
class Target:
    """A running gateway and one funded account on it."""

    port: int
    api_key: str
    encryption_key: str

    @property
    def send_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/sms/send"

    def sealed_send(self, number: str) -> bytes:
        payload = {"countryCode": "US", "phoneNumbers": [number], "content": "hi over h2c?"}
        body = seal(payload, self.encryption_key, api_key=self.api_key)
        return json.dumps(body).encode("utf-8")


@pytest.fixture(params=["thread", "process"])
def target(
    request: pytest.FixtureRequest,
    gateway_factory: Callable[..., GatewayHandle],
    gateway_process: Callable[..., tuple[subprocess.Popen, str]],
    tmp_path: Path,
) -> Target:
    """The gateway under uvicorn in a thread, or as ``python -m gateway serve``."""
    if request.param == "thread":
        gw = gateway_factory()
        account = gw.create_account()
        return Target(gw.config.port, account.api_key, account.encryption_key)
    db = tmp_path / "served.db"
    created = subprocess.run(
        [sys.executable, "-m", "gateway", "account", "create", "--db", str(db)]
        + ["--email", "h2c@example.com"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    keys = json.loads(created.stdout)
    _, base_url = gateway_process(db)
    port = int(base_url.rsplit(":", 1)[1].split("/", 1)[0])
    return Target(port, keys["apiKey"], keys["encryptionKey"])


def head(method: str, path: str, port: int, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if length is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


class Connection:
    """One keep-alive connection to the gateway; its answers are read in order, from one
    buffer (pipelined answers arrive together)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = self.sock.makefile("rb")

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.reader.close()
        self.sock.close()

    def head(self) -> tuple[int, dict[str, str]]:
        """The status and headers of the next answer (an interim 100 too)."""
        status_line = self.reader.readline()
        assert status_line, "the gateway closed the connection without an answer"
        status = int(status_line.split()[1])
        headers = {}
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def response(self) -> tuple[int, dict]:
        """The next answer: its status and its JSON body; the connection stays open."""
        status, headers = self.head()
        body = self.reader.read(int(headers["content-length"]))
        assert headers.get("connection", "").lower() != "close", "the gateway hung up"
        return status, json.loads(body)

    def exchange(
        self, body: bytes | None, offer: dict[str, str], path: str = "/api/sms/send", split=False
    ) -> tuple[int, dict]:
        """One request, then its answer (``split``: the body sent a moment after the head)."""
        method = "GET" if body is None else "POST"
        start = head(method, path, self.port, offer, None if body is None else len(body))
        if split and body:
            self.sock.sendall(start)
            time.sleep(0.05)  # the head is parsed on its own before the body arrives
            self.sock.sendall(body)
        else:
            self.sock.sendall(start + (body or b""))
        return self.response()


def accepted(status: int, answer: dict, number: str) -> bool:
    return (
        status == 200
        and answer["code"] == "0"
        and answer["data"]["messages"][0]["recipient"] == number
    )


@pytest.mark.parametrize("split", [False, True], ids=["one-segment", "body-later"])
def test_an_h2c_upgrade_offer_is_served_as_http11_with_its_body(target: Target, split: bool):
    numbers = phone_numbers("US", 4)
    with Connection(target.port) as conn:
        status, answer = conn.exchange(target.sealed_send(numbers[0]), H2C, split=split)
        assert accepted(status, answer, numbers[0]), answer
        # The connection stays HTTP/1.1 and usable: a plain request, then another offer.
        status, answer = conn.exchange(target.sealed_send(numbers[1]), {})
        assert accepted(status, answer, numbers[1]), answer
        status, answer = conn.exchange(target.sealed_send(numbers[2]), H2C)
        assert accepted(status, answer, numbers[2]), answer
        # A body-less request with the offer, then a send on the same connection.
        assert conn.exchange(None, H2C, path="/healthz") == (200, {"ok": True})
        status, answer = conn.exchange(target.sealed_send(numbers[3]), {})
        assert accepted(status, answer, numbers[3]), answer


def test_an_upgrade_offer_waiting_for_100_continue_gets_it(target: Target) -> None:
    """curl adds ``Expect: 100-continue`` to large bodies: the body is sent after the 100."""
    number = phone_numbers("US", 1, start=40)[0]
    body = target.sealed_send(number)
    offer = {**H2C, "Expect": "100-continue"}
    with Connection(target.port) as conn:
        conn.sock.sendall(head("POST", "/api/sms/send", target.port, offer, len(body)))
        assert conn.head()[0] == 100
        conn.sock.sendall(body)
        status, answer = conn.response()
    assert accepted(status, answer, number), answer


def test_pipelined_requests_with_an_upgrade_offer_are_answered_in_order(target: Target):
    numbers = phone_numbers("US", 3, start=10)
    bodies = [target.sealed_send(n) for n in numbers]
    offers = [{}, H2C, {}]
    stream = b"".join(
        head("POST", "/api/sms/send", target.port, h, len(b)) + b
        for h, b in zip(offers, bodies, strict=True)
    )
    with Connection(target.port) as conn:
        conn.sock.sendall(stream)
        for number in numbers:
            status, answer = conn.response()
            assert accepted(status, answer, number), answer


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_http2_against_plain_http(target: Target, tmp_path: Path) -> None:
    number = phone_numbers("US", 1, start=20)[0]
    body = tmp_path / "body.json"
    body.write_bytes(target.sealed_send(number))
    run = subprocess.run(
        ["curl", "-sS", "--http2", "-H", "Content-Type: application/json"]
        + ["--data-binary", f"@{body}", "-w", "\n%{http_version}", target.send_url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if "not support" in run.stderr.lower() or run.returncode == 1:
        pytest.skip(f"this curl cannot offer HTTP/2: {run.stderr.strip()}")
    answer, version = run.stdout.rsplit("\n", 1)
    assert version == "1.1"
    assert accepted(200, json.loads(answer), number), answer


# The seed's Java example, runnable: the JDK has no JSON library (the seed uses Jackson's
# ObjectMapper), so the two bodies are written by hand; and the seed passes the timestamp to
# ``cipher.update`` where the protocol (and its Python, Go and PHP examples) make it the
# associated data, ``cipher.updateAAD``. Everything else — the cipher, the IV, the base64,
# and above all ``HttpClient.newHttpClient()``, which offers h2c on plain http — is as printed.
JAVA_SEND = """
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.Base64;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

public class KedaSend {
    public static void main(String[] args) throws Exception {
        String url = args[0], apiKey = args[1], encryptionKey = args[2], number = args[3];
        String json = "{\\"countryCode\\":\\"US\\",\\"phoneNumbers\\":[\\"" + number
            + "\\"],\\"content\\":\\"Your verification code is 123456\\","
            + "\\"senderId\\":\\"KedaSMS\\"}";
        SecretKeySpec keySpec = new SecretKeySpec(Base64.getDecoder().decode(encryptionKey), "AES");
        byte[] iv = new byte[12];
        new SecureRandom().nextBytes(iv);
        long timestamp = Instant.now().getEpochSecond();
        Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
        GCMParameterSpec spec = new GCMParameterSpec(128, iv);
        cipher.init(Cipher.ENCRYPT_MODE, keySpec, spec);
        cipher.updateAAD(ByteBuffer.allocate(Long.BYTES).putLong(timestamp).array());
        byte[] encrypted = cipher.doFinal(json.getBytes(StandardCharsets.UTF_8));
        String requestBody = "{\\"apiKey\\":\\"" + apiKey + "\\",\\"timestamp\\":" + timestamp
            + ",\\"iv\\":\\"" + Base64.getEncoder().encodeToString(iv)
            + "\\",\\"cipherText\\":\\"" + Base64.getEncoder().encodeToString(encrypted) + "\\"}";
        HttpRequest request = HttpRequest.newBuilder()
            .uri(URI.create(url))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(requestBody))
            .build();
        HttpResponse<String> response =
            HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println(response.version() + " " + response.statusCode());
        System.out.println(response.body());
    }
}
"""


@pytest.fixture(scope="module")
def java_send(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The compiled Java example: the command line to run it (skips without a JDK)."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.skip("no JDK on this machine (javac and java are needed to run the seed's example)")
    folder = tmp_path_factory.mktemp("java")
    (folder / "KedaSend.java").write_text(JAVA_SEND)
    subprocess.run([javac, "KedaSend.java"], cwd=folder, check=True, timeout=120)
    return [java, "-cp", str(folder), "KedaSend"]


def test_the_seed_java_example_sends_through_its_default_http_client(
    target: Target, java_send: list[str]
) -> None:
    number = phone_numbers("US", 1, start=30)[0]
    run = subprocess.run(
        [*java_send, target.send_url, target.api_key, target.encryption_key, number],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    first, body = run.stdout.strip().split("\n", 1)
    assert first == "HTTP_1_1 200", run.stdout
    assert accepted(200, json.loads(body), number), body


@pytest.mark.parametrize(
    "connection_lines",
    [
        ["Connection: Upgrade", "Connection: keep-alive"],
        ["Connection: Upgrade", "Connection: HTTP2-Settings"],
        ["Connection: keep-alive", "Connection: Upgrade, HTTP2-Settings"],
    ],
    ids=["upgrade-then-keepalive", "upgrade-then-settings", "keepalive-then-upgrade"],
)
def test_an_offer_with_connection_split_over_two_lines_keeps_its_body(
    target: Target, connection_lines: list[str]
) -> None:
    """llhttp sees "upgrade" in any Connection line; the gateway must too (review finding)."""
    numbers = phone_numbers("US", 2)
    body = target.sealed_send(numbers[0])
    lines = [
        "POST /api/sms/send HTTP/1.1",
        f"Host: 127.0.0.1:{target.port}",
        *connection_lines,
        "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    with Connection(target.port) as conn:
        conn.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body)
        status, answer = conn.response()
        assert accepted(status, answer, numbers[0]), answer
        status, answer = conn.exchange(target.sealed_send(numbers[1]), {})  # still usable
        assert accepted(status, answer, numbers[1]), answer
