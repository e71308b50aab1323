"""The envelope is the seed's construction, byte for byte, checked against independent code."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest
from Crypto.Cipher import AES  # pycryptodome: the library of the seed's Python example
from hypothesis import given, settings
from hypothesis import strategies as st

from kedacore import envelope
from kedacore.envelope import (
    DecryptionFailed,
    MalformedEnvelope,
    StaleTimestamp,
    check_window,
    decrypt,
    open_body,
    parse,
    seal,
)

KEY_B64 = base64.b64encode(bytes(range(32))).decode()
KEY = bytes(range(32))
SEED_PAYLOAD = {
    "countryCode": "CN",
    "phoneNumbers": ["13800138000"],
    "content": "您的验证码为 123456",
    "senderId": "KedaSMS",
    "trackClick": True,
    "callbackUrl": "https://example.com/webhook/sms",
}


def seed_python_seal(payload: dict, key: bytes, iv: bytes, timestamp: int) -> dict:
    """Exactly the seed's Python example (requests + pycryptodome), minus the POST."""
    cipher = AES.new(key, AES.MODE_GCM, nonce=iv)
    cipher.update(timestamp.to_bytes(8, "big"))
    ciphertext, tag = cipher.encrypt_and_digest(json.dumps(payload).encode("utf-8"))
    return {
        "apiKey": "your-api-key",
        "timestamp": timestamp,
        "iv": base64.b64encode(iv).decode(),
        "cipherText": base64.b64encode(ciphertext + tag).decode(),
    }


def test_body_sealed_by_the_seed_example_opens() -> None:
    ts = 1_712_534_400
    body = seed_python_seal(SEED_PAYLOAD, KEY, b"\x01" * 12, ts)
    plain = open_body(body, KEY_B64, now=ts + 299)
    assert json.loads(plain) == SEED_PAYLOAD


def test_our_seal_is_byte_identical_to_the_seed_example() -> None:
    ts, iv = 1_712_534_400, bytes(range(12))
    plain = json.dumps(SEED_PAYLOAD).encode()
    ours = seal(plain, KEY_B64, api_key="your-api-key", timestamp=ts, iv=iv)
    assert ours == seed_python_seal(SEED_PAYLOAD, KEY, iv, ts)


def test_pycryptodome_opens_what_we_seal() -> None:
    body = seal(SEED_PAYLOAD, KEY_B64, api_key="k", timestamp=1_700_000_000)
    raw = base64.b64decode(body["cipherText"])
    cipher = AES.new(KEY, AES.MODE_GCM, nonce=base64.b64decode(body["iv"]))
    cipher.update((1_700_000_000).to_bytes(8, "big"))
    plain = cipher.decrypt_and_verify(raw[:-16], raw[-16:])
    assert json.loads(plain) == SEED_PAYLOAD


NODE_SEAL = r"""
const crypto = require('crypto');
const [keyB64, ivB64, ts, text] = process.argv.slice(1);
const aad = Buffer.alloc(8); aad.writeBigUInt64BE(BigInt(ts));
const key = Buffer.from(keyB64, 'base64');
const c = crypto.createCipheriv('aes-256-gcm', key, Buffer.from(ivB64, 'base64'));
c.setAAD(aad);
const ct = Buffer.concat([c.update(text, 'utf8'), c.final(), c.getAuthTag()]);
const body = {apiKey: 'node', timestamp: Number(ts), iv: ivB64, cipherText: ct.toString('base64')};
process.stdout.write(JSON.stringify(body));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_body_sealed_by_node_crypto_opens_and_matches() -> None:
    ts, iv = 1_712_534_400, base64.b64encode(b"\x07" * 12).decode()
    text = json.dumps(SEED_PAYLOAD, ensure_ascii=False)
    out = subprocess.run(
        ["node", "-e", NODE_SEAL, KEY_B64, iv, str(ts), text],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    body = json.loads(out)
    assert json.loads(open_body(body, KEY_B64, now=ts)) == SEED_PAYLOAD
    ours = seal(text, KEY_B64, api_key="node", timestamp=ts, iv=b"\x07" * 12)
    assert ours["cipherText"] == body["cipherText"]


def test_aad_is_the_timestamp_as_8_byte_big_endian() -> None:
    assert envelope.aad_for(1) == b"\x00" * 7 + b"\x01"
    assert envelope.aad_for(2**40) == (2**40).to_bytes(8, "big")


def test_window_is_300_seconds_either_way() -> None:
    check_window(1000, now=1300)
    check_window(1300, now=1000)
    with pytest.raises(StaleTimestamp):
        check_window(1000, now=1301)
    with pytest.raises(StaleTimestamp):
        check_window(1301, now=1000)


def test_changed_timestamp_fails_decryption() -> None:
    body = seal({"a": 1}, KEY_B64, api_key="k", timestamp=1000)
    body["timestamp"] = 1001
    with pytest.raises(DecryptionFailed) as err:
        open_body(body, KEY_B64, now=1000)
    assert err.value.code == "1005"


def test_wrong_key_fails_decryption() -> None:
    body = seal({"a": 1}, KEY_B64, api_key="k", timestamp=1000)
    with pytest.raises(DecryptionFailed):
        open_body(body, envelope.generate_key(), now=1000)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("iv"),
        lambda b: b.update(iv="not base64!"),
        lambda b: b.update(iv=base64.b64encode(b"short").decode()),
        lambda b: b.update(timestamp="1000"),
        lambda b: b.update(timestamp=True),
        lambda b: b.update(apiKey=""),
        lambda b: b.update(cipherText=base64.b64encode(b"x" * 5).decode()),
    ],
)
def test_malformed_bodies_are_1004(mutate) -> None:
    body = seal({"a": 1}, KEY_B64, api_key="k", timestamp=1000)
    mutate(body)
    with pytest.raises(MalformedEnvelope) as err:
        parse(body)
    assert err.value.code == "1004"


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        envelope.decode_key(base64.b64encode(b"x" * 16).decode())
    with pytest.raises(ValueError, match="base64"):
        envelope.decode_key("%%%")


def test_every_seal_uses_a_fresh_iv() -> None:
    ivs = {seal({"a": 1}, KEY_B64, api_key="k")["iv"] for _ in range(200)}
    assert len(ivs) == 200


@settings(max_examples=200, deadline=None)
@given(
    payload=st.dictionaries(st.text(max_size=10), st.text(max_size=50) | st.integers()),
    ts=st.integers(min_value=0, max_value=2**40),
    iv=st.binary(min_size=12, max_size=12),
)
def test_round_trip_and_agreement_with_pycryptodome(payload, ts, iv) -> None:
    body = seal(payload, KEY_B64, api_key="k", timestamp=ts, iv=iv)
    assert json.loads(open_body(body, KEY, now=ts)) == payload
    raw = base64.b64decode(body["cipherText"])
    cipher = AES.new(KEY, AES.MODE_GCM, nonce=iv)
    cipher.update(ts.to_bytes(8, "big"))
    assert json.loads(cipher.decrypt_and_verify(raw[:-16], raw[-16:])) == payload


@settings(max_examples=200, deadline=None)
@given(flip=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(flip, bit) -> None:
    body = seal({"content": "hello"}, KEY_B64, api_key="k", timestamp=1000)
    raw = bytearray(base64.b64decode(body["cipherText"]))
    raw[flip % len(raw)] ^= 1 << bit
    body["cipherText"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionFailed):
        decrypt(parse(body), KEY)


# The worked example of docs/protocol.md: if this changes, the document is wrong.
DOC_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
DOC_PAYLOAD = (
    '{"countryCode":"US","phoneNumbers":["+12065550123"],'
    '"content":"Your verification code is 123456","senderId":"KedaSMS"}'
)
DOC_CIPHERTEXT = (
    "PCC1dLCLtmn0Avjv1MtCT9aFpRjSCzcTVgKr8HALZcByMpSnjeojqkSSSti9txkK3Xs9oXi1zLRL8kRtOtnXt59J"
    "tFqltFQIej3JD5vmYYYY6aYGE0M6G93MrP9MxY+v59oqg8olrWjXeByIaj5EG9s0L/jBuDCcsr0TlxlwJNPexIgXpfk="
)


def test_worked_example_of_the_protocol_document() -> None:
    body = seal(
        DOC_PAYLOAD,
        DOC_KEY,
        api_key="demo-api-key",
        timestamp=1764028800,
        iv=bytes.fromhex("000102030405060708090a0b"),
    )
    assert body == {
        "apiKey": "demo-api-key",
        "timestamp": 1764028800,
        "iv": "AAECAwQFBgcICQoL",
        "cipherText": DOC_CIPHERTEXT,
    }
    assert envelope.aad_for(1764028800).hex() == "000000006924f180"


def test_the_api_key_stays_out_of_an_envelopes_repr() -> None:
    body = envelope.seal({"a": 1}, envelope.generate_key(), api_key="keda_s3cr3tKEY0001")
    parsed = envelope.parse(body)
    assert parsed.api_key == "keda_s3cr3tKEY0001"
    assert "s3cr3tKEY" not in repr(parsed) and "s3cr3tKEY" not in str(parsed)
