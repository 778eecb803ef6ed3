import pytest

from keys.sealing import Sealer, SealingError, generate_kek, parse_kek


def test_seal_round_trip_and_binding_to_context():
    sealer = Sealer(parse_kek(generate_kek()))
    sealed = sealer.seal(b"private key", "signing-key:a")
    assert b"private key" not in sealed
    assert sealer.open(sealed, "signing-key:a") == b"private key"
    with pytest.raises(SealingError):
        sealer.open(sealed, "signing-key:b")


def test_tampering_and_wrong_key_are_refused():
    sealer = Sealer(parse_kek(generate_kek()))
    sealed = bytearray(sealer.seal(b"secret", "ctx"))
    sealed[-1] ^= 1
    with pytest.raises(SealingError):
        sealer.open(bytes(sealed), "ctx")
    other = Sealer(parse_kek(generate_kek()))
    with pytest.raises(SealingError):
        other.open(sealer.seal(b"secret", "ctx"), "ctx")


def test_purpose_keys_are_distinct_and_stable():
    kek = parse_kek(generate_kek())
    a, b = Sealer(kek), Sealer(kek)
    assert a.derive("x") == b.derive("x")
    assert a.derive("x") != a.derive("y")
    assert kek not in (a.derive("x"), a.derive("y"))


@pytest.mark.parametrize("text", ["", "not base64!", "c2hvcnQ"])
def test_bad_keys_are_refused(text):
    with pytest.raises(ValueError):
        parse_kek(text)
