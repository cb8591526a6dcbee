"""Actor keys: making them, loading them, and writing them the way peers read them.

Each actor has two keys (PROTOCOL.md, "Actors"):

- RSA-2048, published as ``publicKey.publicKeyPem`` (SubjectPublicKeyInfo PEM),
  because that is what Mastodon signs and verifies HTTP requests with
  (https://docs.joinmastodon.org/spec/security/);
- Ed25519, published as a ``Multikey`` in ``assertionMethod`` for object
  integrity proofs (FEP-521a, FEP-8b32), whose ``publicKeyMultibase`` is
  ``"z"`` + base58btc(multicodec ``ed25519-pub`` varint ``0xed 0x01`` + 32 raw
  bytes), as in W3C Controlled Identifiers 1.0 (https://www.w3.org/TR/cid-1.0/).

Private keys are stored as unencrypted PKCS#8 PEM (the database row is the
secret). Loading is cached per PEM: parsing and checking an RSA key costs tens of
milliseconds, far more than the signature it is loaded for.
"""

from __future__ import annotations

import functools
from typing import TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

__all__ = [
    "PrivateKey",
    "PublicKey",
    "base58btc_decode",
    "base58btc_encode",
    "ed25519_to_multibase",
    "generate_ed25519_private_pem",
    "generate_rsa_private_pem",
    "load_own_private_key",
    "load_public_pem",
    "multibase_to_ed25519",
    "public_pem",
]

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

# Enough for every local actor of a large co-op, and for the remote keys that
# are verified often; an entry is a few kilobytes.
_CACHE_SIZE = 4096

_MAX_PUBLIC_PEM_LENGTH = 16 * 1024

RSA_KEY_SIZE = 2048
RSA_PUBLIC_EXPONENT = 65537


def generate_rsa_private_pem() -> bytes:
    """A new RSA-2048 key (e = 65537) as unencrypted PKCS#8 PEM."""
    key = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_SIZE)
    return _private_pem(key)


def generate_ed25519_private_pem() -> bytes:
    """A new Ed25519 key as unencrypted PKCS#8 PEM."""
    return _private_pem(ed25519.Ed25519PrivateKey.generate())


def _private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def load_own_private_key(pem: bytes) -> PrivateKey:
    """Load one of this node's private keys (RSA or Ed25519) from PEM, cached.

    Only for keys this node generated itself: RSA consistency checks are
    skipped, which is safe for keys we made and stored, and never for key
    material that came from anywhere else.
    """
    return _load_own_private_key(bytes(pem))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _load_own_private_key(pem: bytes) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(
            pem, password=None, unsafe_skip_rsa_key_validation=True
        )
    except TypeError as exc:  # cryptography's word for "this key is encrypted"
        raise ValueError(f"private key PEM must be unencrypted: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError(f"unsupported private key type: {type(key).__name__}")
    return key


def public_pem(key: PrivateKey | PublicKey) -> str:
    """The public half as SubjectPublicKeyInfo PEM, Mastodon's ``publicKeyPem``."""
    public = (
        key.public_key() if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) else key
    )
    return public.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")


def load_public_pem(pem: str) -> PublicKey:
    """Load a peer's ``publicKeyPem`` (RSA or Ed25519), cached per PEM text.

    Raises ``ValueError`` for text that is not a PEM public key of those types.
    """
    # The text comes from peers and is the cache key: bound it, so that padded
    # PEMs cannot fill memory. An RSA-16384 key is under 3 KiB of PEM.
    if len(pem) > _MAX_PUBLIC_PEM_LENGTH:
        raise ValueError(f"public key PEM is too long ({len(pem)} characters)")
    return _load_public_pem(pem.strip())


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _load_public_pem(pem: str) -> PublicKey:
    try:
        data = pem.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError("public key PEM must be ASCII") from exc
    # Also reads PKCS#1 "BEGIN RSA PUBLIC KEY", which some older servers publish.
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise ValueError(f"unsupported public key type: {type(key).__name__}")
    return key


# --- Multikey (FEP-521a) -------------------------------------------------------

# Multicodec "ed25519-pub" is 0xed, written as the unsigned varint 0xed 0x01
# (https://github.com/multiformats/multicodec/blob/master/table.csv).
_ED25519_PUB_MULTICODEC = b"\xed\x01"
_ED25519_RAW_LENGTH = 32
# Multibase prefix for base58btc (https://github.com/multiformats/multibase).
_BASE58BTC_PREFIX = "z"
# 34 bytes take at most 47 base58 digits; anything much longer is not a key,
# and is refused before the quadratic big-integer decode runs on it.
_MAX_ED25519_MULTIBASE_LENGTH = 64


def ed25519_to_multibase(public_key: ed25519.Ed25519PublicKey) -> str:
    """``publicKeyMultibase`` for an Ed25519 public key (``z6Mk...``)."""
    raw = public_key.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )
    return _BASE58BTC_PREFIX + base58btc_encode(_ED25519_PUB_MULTICODEC + raw)


def multibase_to_ed25519(value: str) -> ed25519.Ed25519PublicKey:
    """Read an Ed25519 ``publicKeyMultibase``; ``ValueError`` says what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"publicKeyMultibase must be a string, got {type(value).__name__}")
    if not value.startswith(_BASE58BTC_PREFIX):
        shown = value[:1] or "nothing"
        raise ValueError(f"publicKeyMultibase must use base58btc (prefix 'z'), found {shown!r}")
    if len(value) > _MAX_ED25519_MULTIBASE_LENGTH:
        raise ValueError(f"publicKeyMultibase is too long for an Ed25519 key ({len(value)} chars)")
    decoded = base58btc_decode(value[1:])
    if not decoded.startswith(_ED25519_PUB_MULTICODEC):
        raise ValueError(
            f"publicKeyMultibase is not an Ed25519 key: multicodec prefix is "
            f"{decoded[:2].hex() or 'empty'}, expected ed01"
        )
    raw = decoded[len(_ED25519_PUB_MULTICODEC) :]
    if len(raw) != _ED25519_RAW_LENGTH:
        raise ValueError(f"Ed25519 public key must be {_ED25519_RAW_LENGTH} bytes, got {len(raw)}")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


# --- base58btc (the Bitcoin alphabet) -----------------------------------------
# https://datatracker.ietf.org/doc/draft-msporny-base58/ : the bytes read as one
# big-endian integer written in base 58, each leading zero byte as a leading "1".

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(_B58_ALPHABET)}


def base58btc_encode(data: bytes) -> str:
    """Encode bytes in base58 with the Bitcoin alphabet (no multibase prefix)."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_B58_ALPHABET[remainder])
    return "1" * zeros + "".join(reversed(digits))


def base58btc_decode(text: str) -> bytes:
    """Decode base58 (Bitcoin alphabet, no multibase prefix) to bytes.

    Raises ``ValueError`` naming the first character outside the alphabet.
    Time grows with the square of the length: bound the input first.
    """
    number = 0
    for position, char in enumerate(text):
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"not a base58btc character: {char!r} at position {position}")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")
