import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from federation.keys import (
    base58btc_decode,
    base58btc_encode,
    ed25519_to_multibase,
    generate_ed25519_private_pem,
    generate_rsa_private_pem,
    load_own_private_key,
    load_public_pem,
    multibase_to_ed25519,
    public_pem,
)

# Base58 vectors from Bitcoin Core (src/test/data/base58_encode_decode.json) and
# the base58 Internet-Draft (draft-msporny-base58), as (hex bytes, encoding).
BASE58_VECTORS = [
    ("", ""),
    ("61", "2g"),
    ("626262", "a3gV"),
    ("636363", "aPEr"),
    ("73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"),
    ("00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"),
    ("516b6fcd0f", "ABnLTmg"),
    ("bf4f89001e670274dd", "3SEo3LWLoPntC"),
    ("572e4794", "3EFU7m"),
    ("ecac89cad93923c02321", "EJDM8drfXA6uyA"),
    ("10c8511e", "Rt5zm"),
    ("00000000000000000000", "1111111111"),
    ("00000000287fb4cd", "1111233QC4"),
    ("271f359e", "zzzzy"),
    ("271f35a0", "211111"),
    (b"Hello World!".hex(), "2NEpo7TZRRrLZSi2U"),
]

# did:key test vectors (w3c-ccg/did-method-key, test-vectors/ed25519-x25519.json):
# (Ed25519 seed, publicKeyBase58 of the raw key, did:key multibase identifier).
DID_KEY_VECTORS = [
    (
        "00" * 32,
        "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
        "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
    ),
    (
        "00" * 31 + "01",
        "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
        "z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
    ),
    (
        "00" * 31 + "02",
        "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
        "z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
    ),
]

# The actor's key in FEP-521a's example.
FEP_521A_EXAMPLE = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def _raw(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _ec_public_pem() -> str:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


# --- base58btc -------------------------------------------------------------------


@pytest.mark.parametrize(("hex_bytes", "encoded"), BASE58_VECTORS)
def test_base58btc_matches_published_vectors(hex_bytes: str, encoded: str) -> None:
    assert base58btc_encode(bytes.fromhex(hex_bytes)) == encoded
    assert base58btc_decode(encoded) == bytes.fromhex(hex_bytes)


def test_base58btc_keeps_every_leading_zero_byte() -> None:
    for data in [b"\x00", b"\x00\x00\x01", b"\x00\x00\x00\xff\x00"]:
        assert base58btc_decode(base58btc_encode(data)) == data


@pytest.mark.parametrize("char", ["0", "O", "I", "l", "+", "/", " ", "é"])
def test_base58btc_rejects_characters_outside_the_alphabet(char: str) -> None:
    with pytest.raises(ValueError, match="not a base58btc character"):
        base58btc_decode("2NEpo" + char + "7TZ")


# --- Multikey --------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "raw_base58", "multibase"), DID_KEY_VECTORS)
def test_multikey_matches_did_key_vectors(seed: str, raw_base58: str, multibase: str) -> None:
    public = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)).public_key()

    assert base58btc_encode(_raw(public)) == raw_base58
    assert ed25519_to_multibase(public) == multibase
    assert _raw(multibase_to_ed25519(multibase)) == _raw(public)


def test_multikey_reads_the_fep_521a_example() -> None:
    key = multibase_to_ed25519(FEP_521A_EXAMPLE)
    assert ed25519_to_multibase(key) == FEP_521A_EXAMPLE


def test_multikey_round_trips_a_generated_key() -> None:
    key = load_own_private_key(generate_ed25519_private_pem())
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    public = key.public_key()

    value = ed25519_to_multibase(public)

    assert value.startswith("z6Mk")
    assert _raw(multibase_to_ed25519(value)) == _raw(public)


def test_multikey_rejects_another_multibase_encoding() -> None:
    # "u" is base64url in the multibase table: a real encoding, but not ours.
    with pytest.raises(ValueError, match=r"base58btc \(prefix 'z'\), found 'u'"):
        multibase_to_ed25519("u7QE" + "A" * 43)
    with pytest.raises(ValueError, match="found 'nothing'"):
        multibase_to_ed25519("")


def test_multikey_rejects_another_multicodec() -> None:
    # 0x1200 (varint 0x80 0x24) is a P-256 public key.
    p256 = "z" + base58btc_encode(b"\x80\x24" + b"\x02" * 33)
    with pytest.raises(ValueError, match="not an Ed25519 key: multicodec prefix is 8024"):
        multibase_to_ed25519(p256)


@pytest.mark.parametrize("length", [0, 31, 33, 40])
def test_multikey_rejects_a_key_of_the_wrong_length(length: int) -> None:
    value = "z" + base58btc_encode(b"\xed\x01" + b"\x07" * length)
    with pytest.raises(ValueError, match=f"must be 32 bytes, got {length}"):
        multibase_to_ed25519(value)


def test_multikey_rejects_non_base58_characters() -> None:
    with pytest.raises(ValueError, match="not a base58btc character: '0'"):
        multibase_to_ed25519(FEP_521A_EXAMPLE[:10] + "0" + FEP_521A_EXAMPLE[11:])


def test_multikey_refuses_huge_values_before_decoding() -> None:
    with pytest.raises(ValueError, match="too long"):
        multibase_to_ed25519("z" + "2" * 1_000_000)


def test_multikey_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        multibase_to_ed25519(b"z6Mk")  # type: ignore[arg-type]


# --- generating and loading ------------------------------------------------------


def test_generated_rsa_key_is_2048_bits_with_e_65537_in_pkcs8() -> None:
    pem = generate_rsa_private_pem()

    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    key = load_own_private_key(pem)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert key.private_numbers().public_numbers.e == 65537


def test_generated_ed25519_key_is_pkcs8() -> None:
    pem = generate_ed25519_private_pem()

    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert isinstance(load_own_private_key(pem), ed25519.Ed25519PrivateKey)


def test_each_generated_key_is_new() -> None:
    assert generate_ed25519_private_pem() != generate_ed25519_private_pem()


def test_own_keys_are_loaded_once_per_pem() -> None:
    rsa_pem = generate_rsa_private_pem()
    ed_pem = generate_ed25519_private_pem()

    assert load_own_private_key(rsa_pem) is load_own_private_key(rsa_pem)
    assert load_own_private_key(ed_pem) is load_own_private_key(ed_pem)
    assert load_own_private_key(rsa_pem) is not load_own_private_key(generate_rsa_private_pem())


def test_loaded_rsa_key_still_signs_what_its_public_key_verifies() -> None:
    key = load_own_private_key(generate_rsa_private_pem())
    assert isinstance(key, rsa.RSAPrivateKey)
    public = load_public_pem(public_pem(key))
    assert isinstance(public, rsa.RSAPublicKey)

    signature = key.sign(b"(request-target): post /inbox", padding.PKCS1v15(), hashes.SHA256())

    public.verify(signature, b"(request-target): post /inbox", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public.verify(signature, b"tampered", padding.PKCS1v15(), hashes.SHA256())


def test_encrypted_private_keys_are_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ValueError, match="unencrypted"):
        load_own_private_key(pem)


def test_other_private_key_types_are_refused() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="unsupported private key type"):
        load_own_private_key(pem)


# --- public PEM ------------------------------------------------------------------


def test_public_pem_is_subject_public_key_info_as_mastodon_publishes() -> None:
    key = load_own_private_key(generate_rsa_private_pem())

    pem = public_pem(key)

    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert pem.endswith("-----END PUBLIC KEY-----\n")
    assert public_pem(key.public_key()) == pem


def test_public_pem_of_an_ed25519_key_round_trips() -> None:
    key = load_own_private_key(generate_ed25519_private_pem())
    assert isinstance(key, ed25519.Ed25519PrivateKey)

    public = load_public_pem(public_pem(key))

    assert isinstance(public, ed25519.Ed25519PublicKey)
    assert _raw(public) == _raw(key.public_key())


def test_public_keys_are_loaded_once_per_pem() -> None:
    pem = public_pem(load_own_private_key(generate_ed25519_private_pem()))
    assert load_public_pem(pem) is load_public_pem(pem)


def test_public_pem_tolerates_surrounding_whitespace_and_pkcs1() -> None:
    key = load_own_private_key(generate_rsa_private_pem())
    assert isinstance(key, rsa.RSAPrivateKey)
    pkcs1 = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )

    assert pkcs1.startswith("-----BEGIN RSA PUBLIC KEY-----")
    from_pkcs1 = load_public_pem("\n  " + pkcs1 + "\n\n")
    assert isinstance(from_pkcs1, rsa.RSAPublicKey)
    assert from_pkcs1.public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize("junk", ["", "not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n", "clé"])
def test_junk_public_pem_is_a_value_error(junk: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is cryptography's
        load_public_pem(junk)


def test_padded_public_pem_is_refused_before_parsing() -> None:
    pem = public_pem(load_own_private_key(generate_ed25519_private_pem()))
    with pytest.raises(ValueError, match="too long"):
        load_public_pem(" " * 20_000 + pem)


def test_other_public_key_types_are_refused() -> None:
    pem = _ec_public_pem()
    with pytest.raises(ValueError, match="unsupported public key type"):
        load_public_pem(pem)
