from datetime import datetime, timezone

from keys.jwks import render_jwks
from keys.manager import KeyManager
from keys.sealing import Sealer, generate_kek, parse_kek


class NoRepository:
    pass


def _manager():
    return KeyManager(NoRepository(), Sealer(parse_kek(generate_kek())),
                      clock=lambda: datetime.now(timezone.utc))


def test_jwks_holds_public_members_only_and_a_stable_etag():
    manager = _manager()
    records = [manager.generate("active"), manager.generate("next")]
    first = render_jwks(records)
    assert render_jwks(list(reversed(records))) == first
    body = first.body.decode()
    for private_member in ('"d"', '"p"', '"q"', '"dp"', '"dq"', '"qi"'):
        assert private_member not in body
    assert first.etag.startswith('"') and first.etag.endswith('"')
    assert render_jwks(records[:1]).etag != first.etag


def test_generated_key_is_rsa_2048_sealed_and_named_by_thumbprint():
    manager = _manager()
    record = manager.generate("active")
    assert b"PRIVATE KEY" not in record.sealed_private
    key = manager.open(record)
    assert key.kid == record.kid
    assert key.key.private_key.key_size >= 2048
    assert record.public_jwk["kid"] == key.key.thumbprint()
