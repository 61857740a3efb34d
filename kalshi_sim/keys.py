"""API keys of the embedded exchange and the signature check Kalshi runs on every request.

The exchange holds only public keys. It makes one demo key pair so ``kalshi-supervisor run``
works with no credentials; the private half goes to a 0600 file the client loads exactly
as it would load a key downloaded from Kalshi.
"""

from __future__ import annotations

import base64
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"

DEFAULT_MAX_CLOCK_SKEW = 5.0
"""Seconds a signed timestamp may be off the exchange's clock, either way. Kalshi rejects
stale signatures but does not document its window (KALSHI_PROTOCOL.md §2: UNCONFIRMED);
5 s refuses a replayed request while leaving a loaded client plenty of margin."""


class KeyRegistry:
    """Key id -> public key; verifies RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) and Ed25519."""

    def __init__(
        self,
        max_clock_skew: float | None = DEFAULT_MAX_CLOCK_SKEW,
        *,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        """``max_clock_skew``: seconds a timestamp may be stale or ahead (None: any age)."""
        self._keys: dict[str, PublicKey] = {}
        self._lock = threading.Lock()
        self._max_skew_ms = None if max_clock_skew is None else int(max_clock_skew * 1000)
        self._clock_ms = clock_ms

    def create_demo_key(
        self, directory: Path, private_key: rsa.RSAPrivateKey | None = None
    ) -> tuple[str, Path]:
        """Register a demo key under a new key id; write its private PEM (PKCS#1, 0600) into
        ``directory``. The pair is ``private_key``, or a fresh RSA-2048 one when None."""
        if private_key is None:
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = str(uuid.uuid4())
        path = Path(directory) / f"kalshi-demo-{key_id[:8]}.key"
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        with self._lock:
            self._keys[key_id] = private_key.public_key()
        return key_id, path

    def register_public_key(self, public_pem: bytes, key_id: str | None = None) -> str:
        """Accept a user's own public key (Kalshi's bring-your-own-key flow); returns its key id."""
        public_key = serialization.load_pem_public_key(public_pem)
        if not isinstance(public_key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
            raise ValueError("only RSA and Ed25519 public keys are accepted")
        key_id = key_id or str(uuid.uuid4())
        with self._lock:
            self._keys[key_id] = public_key
        return key_id

    def verify(self, headers: Mapping[str, str], method: str, path: str) -> bool:
        """True when the three ``KALSHI-ACCESS-*`` headers sign ``timestamp + METHOD + path``.

        ``path`` is the request path from the API root without the query string.
        ``headers`` must look names up case-insensitively (Starlette's ``Headers`` and httpx's do).
        A timestamp further than ``max_clock_skew`` from the exchange's clock (stale: a
        replayed request; or ahead) fails as a bad signature does.
        """
        key_id = headers.get(HEADER_KEY)
        timestamp = headers.get(HEADER_TIMESTAMP)
        signature_b64 = headers.get(HEADER_SIGNATURE)
        if not key_id or not timestamp or not signature_b64 or not timestamp.isdigit():
            return False
        if self._max_skew_ms is not None and (
            len(timestamp) > 18 or abs(self._clock_ms() - int(timestamp)) > self._max_skew_ms
        ):
            return False
        with self._lock:
            public_key = self._keys.get(key_id)
        if public_key is None:
            return False
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except ValueError:
            return False
        message = f"{timestamp}{method.upper()}{path.split('?', 1)[0]}".encode()
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                public_key.verify(
                    signature,
                    message,
                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                    hashes.SHA256(),
                )
            else:
                public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True
