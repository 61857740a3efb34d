"""Request signing: the exact Kalshi scheme, both PEM formats, and no key material in any text."""

from __future__ import annotations

import base64
import logging
import pickle
import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from kalshi_api.auth import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MAX_MONOTONIC_SKEW_MS,
    PRIVATE_KEY_ENV,
    KalshiSigner,
    KeyLoadError,
    load_signer,
)
from kalshi_api.errors import AuthenticationError
from kalshi_api.rest import KalshiRestClient, RetryPolicy
from kalshi_sim.exchange import EmbeddedExchange

KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, fmt: str) -> bytes:
    formats = {
        "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
        "pkcs8": serialization.PrivateFormat.PKCS8,
    }
    return key.private_bytes(serialization.Encoding.PEM, formats[fmt], serialization.NoEncryption())


def _secret_lines(pem: bytes) -> list[str]:
    """The base64 body lines of a PEM: none of them may ever show up in text we produce."""
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def _assert_no_key_material(text: str, pem: bytes) -> None:
    leaked = [line for line in _secret_lines(pem) if line in text]
    assert not leaked, f"{len(leaked)} PEM line(s) leaked"


def _verify_rsa(key: rsa.RSAPrivateKey, headers: dict[str, str], method: str, path: str) -> None:
    message = f"{headers[HEADER_TIMESTAMP]}{method}{path}".encode()
    key.public_key().verify(
        base64.b64decode(headers[HEADER_SIGNATURE], validate=True),
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


@pytest.fixture
def exchange_with_user_key(
    rest_exchange: EmbeddedExchange, rsa_key: rsa.RSAPrivateKey
) -> Iterator[tuple[EmbeddedExchange, str]]:
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    yield rest_exchange, rest_exchange.keys.register_public_key(public_pem)


# -- the signature scheme -------------------------------------------------------------------------
def test_headers_when_signing_get_carry_key_ms_timestamp_and_valid_pss_signature(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    signer = KalshiSigner(KEY_ID, rsa_key, clock_ms=lambda: 1703123456789)
    headers = signer.headers("get", "/trade-api/v2/portfolio/balance")
    assert set(headers) == {HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE}
    assert headers[HEADER_KEY] == KEY_ID
    assert headers[HEADER_TIMESTAMP] == "1703123456789"
    _verify_rsa(rsa_key, headers, "GET", "/trade-api/v2/portfolio/balance")


def test_headers_when_path_has_query_signs_path_only(rsa_key: rsa.RSAPrivateKey) -> None:
    signer = KalshiSigner(KEY_ID, rsa_key)
    headers = signer.headers("GET", "/trade-api/v2/portfolio/orders?limit=5&cursor=abc")
    _verify_rsa(rsa_key, headers, "GET", "/trade-api/v2/portfolio/orders")


def test_headers_when_signing_ws_upgrade_signs_ws_root(rsa_key: rsa.RSAPrivateKey) -> None:
    headers = KalshiSigner(KEY_ID, rsa_key).headers("GET", "/trade-api/ws/v2")
    _verify_rsa(rsa_key, headers, "GET", "/trade-api/ws/v2")


def test_headers_when_path_not_from_api_root_raises(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="API root"):
        KalshiSigner(KEY_ID, rsa_key).headers("GET", "portfolio/balance")


def test_headers_when_called_in_same_millisecond_timestamps_strictly_increase(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    signer = KalshiSigner(KEY_ID, rsa_key, clock_ms=lambda: 1_000)
    stamps = [int(signer.headers("GET", "/x")[HEADER_TIMESTAMP]) for _ in range(5)]
    assert stamps == [1_000, 1_001, 1_002, 1_003, 1_004]


def test_headers_when_clock_steps_back_timestamps_never_repeat(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    times = iter([5_000, 4_000, 4_000, 6_000])
    signer = KalshiSigner(KEY_ID, rsa_key, clock_ms=lambda: next(times))
    stamps = [int(signer.headers("GET", "/x")[HEADER_TIMESTAMP]) for _ in range(4)]
    assert stamps == [5_000, 5_001, 5_002, 6_000]


def test_headers_when_wall_clock_steps_back_an_hour_follow_the_clock(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    hour = 3_600_000
    now = [10 * hour]
    signer = KalshiSigner(KEY_ID, rsa_key, clock_ms=lambda: now[0])
    first = int(signer.headers("GET", "/x")[HEADER_TIMESTAMP])
    now[0] -= hour
    stepped = [int(signer.headers("GET", "/x")[HEADER_TIMESTAMP]) for _ in range(3)]
    assert first == 10 * hour
    # Follows the clock (no hour-ahead pin), and still strictly increasing within the skew.
    assert stepped == [9 * hour, 9 * hour + 1, 9 * hour + 2]


def test_headers_when_clock_jitters_back_within_skew_stay_strictly_increasing(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    times = iter([50_000, 50_000 - MAX_MONOTONIC_SKEW_MS + 10, 50_000 - MAX_MONOTONIC_SKEW_MS - 10])
    signer = KalshiSigner(KEY_ID, rsa_key, clock_ms=lambda: next(times))
    stamps = [int(signer.headers("GET", "/x")[HEADER_TIMESTAMP]) for _ in range(3)]
    assert stamps == [50_000, 50_001, 50_000 - MAX_MONOTONIC_SKEW_MS - 10]


def test_headers_when_key_is_ed25519_signs_message_directly() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signer = KalshiSigner.from_pem(KEY_ID, _pem(key, "pkcs8"))
    headers = signer.headers("GET", "/trade-api/v2/portfolio/balance")
    message = f"{headers[HEADER_TIMESTAMP]}GET/trade-api/v2/portfolio/balance".encode()
    key.public_key().verify(base64.b64decode(headers[HEADER_SIGNATURE]), message)
    assert signer.algorithm == "ed25519"


# -- against the exchange: accepted and rejected ---------------------------------------------------
@pytest.mark.parametrize("fmt", ["pkcs1", "pkcs8"])
def test_get_balance_when_key_loaded_from_either_pem_format_is_accepted(
    exchange_with_user_key: tuple[EmbeddedExchange, str],
    rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    fmt: str,
) -> None:
    exchange, key_id = exchange_with_user_key
    path = tmp_path / f"kalshi-{fmt}.key"
    path.write_bytes(_pem(rsa_key, fmt))
    header = (
        b"-----BEGIN RSA PRIVATE KEY-----" if fmt == "pkcs1" else b"-----BEGIN PRIVATE KEY-----"
    )
    assert path.read_bytes().startswith(header)
    with KalshiRestClient(exchange.rest_url, KalshiSigner.from_file(key_id, path)) as client:
        assert client.get_balance().balance == exchange.account.balance_cents()


def test_get_balance_when_ed25519_key_registered_is_accepted(
    rest_exchange: EmbeddedExchange,
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id = rest_exchange.keys.register_public_key(public_pem)
    signer = KalshiSigner.from_pem(key_id, _pem(key, "pkcs8"))
    with KalshiRestClient(rest_exchange.rest_url, signer) as client:
        value = client.get_balance().portfolio_value
        assert value == rest_exchange.account.portfolio_value_cents(0)  # default shard [SH]


def test_get_balance_when_demo_key_file_loaded_is_accepted(rest_exchange: EmbeddedExchange) -> None:
    signer = load_signer(rest_exchange.key_id, rest_exchange.private_key_path, env={})
    with KalshiRestClient(rest_exchange.rest_url, signer) as client:
        assert client.get_balance().balance == 50_000


class _TamperingSigner(KalshiSigner):
    """Signs correctly, then corrupts one part of what it hands out."""

    __slots__ = ("_mode",)

    def __init__(self, base: KalshiSigner, key: rsa.RSAPrivateKey, mode: str) -> None:
        super().__init__(base.key_id, key)
        self._mode = mode

    def headers(self, method: str, path: str) -> dict[str, str]:
        if self._mode == "wrong_path":
            return super().headers(method, path.replace("/trade-api/v2", "", 1))
        if self._mode == "wrong_method":
            return super().headers("POST", path)
        headers = super().headers(method, path)
        if self._mode == "tampered_signature":
            raw = bytearray(base64.b64decode(headers[HEADER_SIGNATURE]))
            raw[len(raw) // 2] ^= 0x01
            headers[HEADER_SIGNATURE] = base64.b64encode(bytes(raw)).decode()
        elif self._mode == "stale_timestamp_in_header":
            headers[HEADER_TIMESTAMP] = str(int(headers[HEADER_TIMESTAMP]) - 1)
        elif self._mode == "not_base64":
            headers[HEADER_SIGNATURE] = "not base64!!"
        return headers


@pytest.mark.parametrize(
    "mode",
    ["wrong_path", "wrong_method", "tampered_signature", "stale_timestamp_in_header", "not_base64"],
)
def test_get_balance_when_signature_does_not_match_raises_authentication_error(
    exchange_with_user_key: tuple[EmbeddedExchange, str],
    rsa_key: rsa.RSAPrivateKey,
    mode: str,
) -> None:
    exchange, key_id = exchange_with_user_key
    signer = _TamperingSigner(KalshiSigner(key_id, rsa_key), rsa_key, mode)
    with (
        KalshiRestClient(exchange.rest_url, signer, retry=NO_RETRY) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.get_balance()
    assert caught.value.status == 401
    assert caught.value.code == "authentication_error"
    assert "INCORRECT_API_KEY_SIGNATURE" in str(caught.value)


def test_get_balance_when_signed_with_other_private_key_raises_authentication_error(
    rest_exchange: EmbeddedExchange, rsa_key: rsa.RSAPrivateKey
) -> None:
    signer = KalshiSigner(rest_exchange.key_id, rsa_key)  # right key id, wrong private key
    with (
        KalshiRestClient(rest_exchange.rest_url, signer, retry=NO_RETRY) as client,
        pytest.raises(AuthenticationError),
    ):
        client.get_balance()


def test_get_balance_when_key_id_unknown_raises_authentication_error(
    rest_exchange: EmbeddedExchange, rsa_key: rsa.RSAPrivateKey
) -> None:
    signer = KalshiSigner("00000000-0000-4000-8000-000000000000", rsa_key)
    with (
        KalshiRestClient(rest_exchange.rest_url, signer, retry=NO_RETRY) as client,
        pytest.raises(AuthenticationError),
    ):
        client.get_positions()


def test_get_balance_when_headers_missing_raises_authentication_error(
    rest_exchange: EmbeddedExchange,
) -> None:
    with (
        KalshiRestClient(rest_exchange.rest_url, None, retry=NO_RETRY) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.get_balance()
    assert caught.value.status == 401
    assert rest_exchange.oplog.entries("rest")[-1].detail == "GET /trade-api/v2/portfolio/balance"


@pytest.mark.parametrize("missing", [HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE])
def test_raw_get_when_one_auth_header_missing_answers_401(
    rest_exchange: EmbeddedExchange, missing: str
) -> None:
    signer = load_signer(rest_exchange.key_id, rest_exchange.private_key_path, env={})
    headers = signer.headers("GET", "/trade-api/v2/portfolio/balance")
    del headers[missing]
    url = f"{rest_exchange.rest_url}/portfolio/balance"
    with httpx.Client(trust_env=False) as http:
        response = http.get(url, headers=headers)
    assert response.status_code == 401


# -- loading keys ---------------------------------------------------------------------------------
def test_load_signer_when_no_path_reads_pem_from_env(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = _pem(rsa_key, "pkcs1").decode()
    signer = load_signer(KEY_ID, None, env={PRIVATE_KEY_ENV: pem})
    _verify_rsa(rsa_key, signer.headers("GET", "/p"), "GET", "/p")


def test_load_signer_when_env_pem_has_escaped_newlines_unescapes_them(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    escaped = _pem(rsa_key, "pkcs8").decode().replace("\n", "\\n")
    signer = load_signer(KEY_ID, env={PRIVATE_KEY_ENV: escaped})
    _verify_rsa(rsa_key, signer.headers("GET", "/p"), "GET", "/p")


def test_load_signer_when_path_and_env_given_path_wins(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(_pem(rsa_key, "pkcs8"))
    signer = load_signer(KEY_ID, path, env={PRIVATE_KEY_ENV: "garbage"})
    _verify_rsa(rsa_key, signer.headers("GET", "/p"), "GET", "/p")


def test_load_signer_when_nothing_given_raises_one_line_error() -> None:
    with pytest.raises(KeyLoadError, match=PRIVATE_KEY_ENV) as caught:
        load_signer(KEY_ID, None, env={})
    assert "\n" not in str(caught.value)


def test_key_id_when_signer_built_is_exposed_and_stripped(rsa_key: rsa.RSAPrivateKey) -> None:
    assert KalshiSigner(f" {KEY_ID}\n", rsa_key).key_id == KEY_ID


def test_init_when_key_id_empty_raises(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(KeyLoadError, match="key id"):
        KalshiSigner("  ", rsa_key)


def test_from_file_when_missing_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.key"
    with pytest.raises(KeyLoadError, match="does not exist") as caught:
        KalshiSigner.from_file(KEY_ID, path)
    assert str(path) in str(caught.value)


def test_from_file_when_path_is_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match="is a directory") as caught:
        KalshiSigner.from_file(KEY_ID, tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_from_file_when_parent_is_a_file_says_not_readable(tmp_path: Path) -> None:
    parent = tmp_path / "file"
    parent.write_text("x")
    with pytest.raises(KeyLoadError, match="not readable"):
        KalshiSigner.from_file(KEY_ID, parent / "k.key")


# -- no key material anywhere ---------------------------------------------------------------------
def _bad_pems(rsa_key: rsa.RSAPrivateKey) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, expected message fragment); every file contains real key lines."""
    pkcs1 = _pem(rsa_key, "pkcs1")
    lines = pkcs1.splitlines()
    corrupt = b"\n".join([*lines[:5], lines[5][::-1], *lines[6:]]) + b"\n"
    truncated = b"\n".join([*lines[: len(lines) // 2], lines[-1]]) + b"\n"
    encrypted = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret-passphrase"),
    )
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    headless = b"\n".join(lines[1:-1]) + b"\n"
    openssh = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return {
        "corrupt": (corrupt, "not a valid PEM private key"),
        "truncated": (truncated, "not a valid PEM private key"),
        "encrypted": (encrypted, "encrypted"),
        "ec": (ec_key, "RSA or Ed25519"),
        "public": (public, "not a private key"),
        "headless": (headless, "not a PEM private key"),
        "empty": (b"\n\n", "is empty"),
        "openssh": (openssh, "OpenSSH"),
    }


@pytest.mark.parametrize(
    "case", ["corrupt", "truncated", "encrypted", "ec", "public", "headless", "empty", "openssh"]
)
def test_from_file_when_key_bad_error_names_path_and_problem_without_key_material(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, case: str
) -> None:
    data, fragment = _bad_pems(rsa_key)[case]
    path = tmp_path / f"{case}.key"
    path.write_bytes(data)
    with pytest.raises(KeyLoadError) as caught:
        KalshiSigner.from_file(KEY_ID, path)
    error = caught.value
    assert fragment in str(error)
    assert str(path) in str(error)
    assert "\n" not in str(error)
    formatted = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), formatted):
        _assert_no_key_material(text, data)
        _assert_no_key_material(text, _pem(rsa_key, "pkcs1"))


@pytest.mark.parametrize("case", ["corrupt", "encrypted", "public"])
def test_load_signer_when_env_key_bad_error_names_env_var_without_key_material(
    rsa_key: rsa.RSAPrivateKey, case: str
) -> None:
    data, _ = _bad_pems(rsa_key)[case]
    with pytest.raises(KeyLoadError, match=PRIVATE_KEY_ENV) as caught:
        load_signer(KEY_ID, env={PRIVATE_KEY_ENV: data.decode()})
    _assert_no_key_material("".join(traceback.format_exception(caught.value)), data)


@pytest.mark.parametrize("fmt", ["pkcs1", "pkcs8"])
def test_repr_when_signer_loaded_contains_no_key_material(
    rsa_key: rsa.RSAPrivateKey, fmt: str
) -> None:
    pem = _pem(rsa_key, fmt)
    signer = KalshiSigner.from_pem(KEY_ID, pem)
    for text in (repr(signer), str(signer), f"{signer}", repr(_vars_or_slots(signer))):
        _assert_no_key_material(text, pem)
    assert KEY_ID in repr(signer)


def _vars_or_slots(signer: KalshiSigner) -> dict[str, object]:
    """What a debugger or a careless ``log.debug('%r', obj.__dict__)`` would print."""
    return {name: getattr(signer, name) for name in type(signer).__slots__}


def test_pickle_when_signer_pickled_refuses(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(KalshiSigner(KEY_ID, rsa_key))


def test_client_logs_when_retrying_signed_requests_contain_no_key_material(
    rest_exchange: EmbeddedExchange, caplog: pytest.LogCaptureFixture
) -> None:
    pem = Path(rest_exchange.private_key_path).read_bytes()
    signer = load_signer(rest_exchange.key_id, rest_exchange.private_key_path, env={})
    rest_exchange.faults.fail_next_requests(2, 503)
    retry = RetryPolicy(sleep=lambda _: None)
    with (
        caplog.at_level(logging.DEBUG),
        KalshiRestClient(rest_exchange.rest_url, signer, retry=retry) as client,
    ):
        client.get_balance()
        _assert_no_key_material(repr(client), pem)
    assert "retry" in caplog.text
    _assert_no_key_material(caplog.text, pem)
