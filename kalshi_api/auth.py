"""Kalshi request signing: the three ``KALSHI-ACCESS-*`` headers on every REST call and WS upgrade.

Kalshi authenticates each request on its own: the client signs
``timestamp_ms + METHOD + path`` (path from the API root, no query string, no body)
with its private key. RSA keys use RSA-PSS (SHA-256, MGF1-SHA-256, salt 32); newer
accounts may hold Ed25519 keys, which sign the same message directly.

The private key is a secret a user downloaded once and cannot fetch again, so this
module never puts key material into a repr, an exception message or a log line, and
exceptions raised while loading a key are not chained to the ``cryptography`` error
(whose context could include the bytes).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"
PRIVATE_KEY_ENV = "KALSHI_PRIVATE_KEY"
MAX_MONOTONIC_SKEW_MS = 2000
"""How far (ms) timestamps may run ahead of a clock that stepped back before they follow it."""

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


class KeyLoadError(ValueError):
    """A private key could not be loaded; the message names the source, never the key."""


class KalshiSigner:
    """Holds one API key (id + private key) and produces signed headers for requests.

    Thread-safe: actors may share a signer. Timestamps follow the wall clock, which is what
    the exchange checks them against. Within :data:`MAX_MONOTONIC_SKEW_MS` they are kept
    strictly increasing (bumped by 1 ms when two calls land in the same millisecond or
    the clock jitters back a little), so no two signed requests from one signer carry
    the same timestamp. When the clock steps back further (an NTP correction, a VM
    resume), the signer follows it: pinning to the old high-water mark would leave every
    timestamp ahead of the exchange's clock by the whole step, for as long as the step.
    """

    __slots__ = ("_clock_ms", "_key", "_key_id", "_last_ms", "_lock")

    def __init__(
        self,
        key_id: str,
        private_key: PrivateKey,
        *,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if not isinstance(key_id, str) or not key_id.strip():
            raise KeyLoadError("API key id is empty")
        if not isinstance(private_key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise KeyLoadError(
                f"unsupported private key type {type(private_key).__name__}; "
                "Kalshi keys are RSA or Ed25519"
            )
        self._key_id = key_id.strip()
        self._key = private_key
        self._clock_ms = clock_ms or _wall_clock_ms
        self._last_ms = 0
        self._lock = threading.Lock()

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_pem(cls, key_id: str, pem: bytes | str, *, source: str = "PEM data") -> KalshiSigner:
        """Load a PKCS#1 (``BEGIN RSA PRIVATE KEY``) or PKCS#8 (``BEGIN PRIVATE KEY``) PEM.

        ``source`` names where the PEM came from in error messages (a path, an env var).
        """
        data = pem.encode("utf-8", "replace") if isinstance(pem, str) else bytes(pem)
        return cls(key_id, _load_private_key(data, source))

    @classmethod
    def from_file(cls, key_id: str, path: str | os.PathLike[str]) -> KalshiSigner:
        """Load the key file Kalshi let the user download (``.key``/``.txt``, PEM)."""
        file_path = Path(path).expanduser()
        try:
            data = file_path.read_bytes()
        except FileNotFoundError:
            raise KeyLoadError(f"private key file {file_path} does not exist") from None
        except IsADirectoryError:
            raise KeyLoadError(f"private key file {file_path} is a directory") from None
        except PermissionError:
            raise KeyLoadError(
                f"private key file {file_path} is not readable (permission denied)"
            ) from None
        except OSError as exc:
            raise KeyLoadError(
                f"private key file {file_path} is not readable ({exc.strerror or 'I/O error'})"
            ) from None
        return cls(key_id, _load_private_key(data, f"private key file {file_path}"))

    # -- use --------------------------------------------------------------------------------
    @property
    def key_id(self) -> str:
        """The API key id (a UUID); public, it is sent in every request."""
        return self._key_id

    @property
    def algorithm(self) -> str:
        """``rsa-<bits>`` or ``ed25519``, for logs and diagnostics."""
        if isinstance(self._key, rsa.RSAPrivateKey):
            return f"rsa-{self._key.key_size}"
        return "ed25519"

    def headers(self, method: str, path: str) -> dict[str, str]:
        """The three ``KALSHI-ACCESS-*`` headers for one request.

        ``path`` starts at the API root (``/trade-api/v2/portfolio/balance`` or
        ``/trade-api/ws/v2``); a query string or fragment is stripped before signing,
        because Kalshi signs the path alone.
        """
        sign_path = path.split("?", 1)[0].split("#", 1)[0]
        if not sign_path.startswith("/"):
            raise ValueError(f"path to sign must start at the API root with '/', got {path!r}")
        timestamp = str(self._next_timestamp_ms())
        message = f"{timestamp}{method.upper()}{sign_path}".encode()
        signature = base64.b64encode(self._sign(message)).decode("ascii")
        return {
            HEADER_KEY: self._key_id,
            HEADER_TIMESTAMP: timestamp,
            HEADER_SIGNATURE: signature,
        }

    def _sign(self, message: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(message, _PSS, hashes.SHA256())
        return self._key.sign(message)

    def _next_timestamp_ms(self) -> int:
        with self._lock:
            now = self._clock_ms()
            if now <= self._last_ms and self._last_ms - now < MAX_MONOTONIC_SKEW_MS:
                now = self._last_ms + 1
            self._last_ms = now
            return now

    def __repr__(self) -> str:
        return f"KalshiSigner(key_id={self._key_id!r}, algorithm={self.algorithm!r})"

    __str__ = __repr__

    def __reduce__(self) -> object:
        """Refuse pickling: a pickle would carry the private key out of the process."""
        raise TypeError("KalshiSigner cannot be pickled (it holds a private key)")


def load_signer(
    key_id: str,
    private_key_path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] = os.environ,
) -> KalshiSigner:
    """A signer from a key file, or from the PEM itself in ``$KALSHI_PRIVATE_KEY``.

    A path wins over the environment. Container secrets often store PEMs with literal
    ``\\n`` sequences instead of newlines; those are turned back into newlines.
    """
    if private_key_path is not None and str(private_key_path).strip():
        return KalshiSigner.from_file(key_id, private_key_path)
    pem = env.get(PRIVATE_KEY_ENV)
    if pem is None or not pem.strip():
        raise KeyLoadError(
            f"no private key: pass a key file path or put the PEM in ${PRIVATE_KEY_ENV}"
        )
    if "\n" not in pem.strip() and "\\n" in pem:
        pem = pem.replace("\\n", "\n")
    return KalshiSigner.from_pem(key_id, pem, source=f"environment variable {PRIVATE_KEY_ENV}")


def _load_private_key(data: bytes, source: str) -> PrivateKey:
    """Parse PEM bytes into a key; every failure is a one-line KeyLoadError naming ``source``."""
    if not data.strip():
        raise KeyLoadError(f"{source} is empty")
    if b"-----BEGIN" not in data or b"PRIVATE KEY-----" not in data:
        if b"-----BEGIN" in data:
            raise KeyLoadError(
                f"{source} is a PEM file but not a private key (public key or certificate?)"
            )
        raise KeyLoadError(f"{source} is not a PEM private key")
    if b"OPENSSH PRIVATE KEY" in data:
        raise KeyLoadError(
            f"{source} is an OpenSSH-format key; convert it to PEM (ssh-keygen -p -m PEM)"
        )
    if b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data:
        raise KeyLoadError(f"{source} is an encrypted private key; decrypt it first")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyLoadError(f"{source} is an encrypted private key; decrypt it first") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyLoadError(
            f"{source} is not a valid PEM private key (corrupt or truncated)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        kind = type(key).__name__.lstrip("_").replace("PrivateKey", "") or "unknown"
        raise KeyLoadError(f"{source} holds a {kind} key; Kalshi keys are RSA or Ed25519")
    return key


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000
