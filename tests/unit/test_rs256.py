"""idp.rs256: the compact RS256 check the IdP and resource servers share, with local keys."""

import base64
import json
import os

import pytest
from joserfc.util import urlsafe_b64decode

from idp.rs256 import MAX_REMEMBERED_HEADERS, Refused, RS256Tokens, base64url_decode
from idp.rfc9068 import ACCESS_TOKEN_TYPES
from tests.keyserver import claims_for, mint, new_key, sign_raw

ISSUER = "https://id.example"


@pytest.fixture(scope="module")
def key():
    return new_key()


def _keys(*keys):
    by_kid = {key.kid: key.public_key for key in keys}
    return by_kid.get


def test_a_good_token_gives_its_claims(key):
    tokens = RS256Tokens(ACCESS_TOKEN_TYPES)
    claims = tokens.claims(mint(key, ISSUER, sub="user-7"), _keys(key))
    assert claims["sub"] == "user-7" and claims["iss"] == ISSUER


@pytest.mark.parametrize("header", [
    {"typ": "JWT"}, {"typ": None}, {"kid": None}, {"kid": ""}, {"alg": "PS256"},
    {"crit": ["urn:example:ext"], "urn:example:ext": True},
])
def test_headers_other_than_ours_are_refused(key, header):
    fields = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid, **header}
    fields = {name: value for name, value in fields.items() if value is not None}
    token = sign_raw(key, fields, json.dumps(claims_for(ISSUER)).encode())
    with pytest.raises(Refused):
        RS256Tokens(ACCESS_TOKEN_TYPES).claims(token, _keys(key))


@pytest.mark.parametrize("typ, accepted", [
    ("at+jwt", True), ("AT+JWT", True), ("application/at+jwt", True),
    ("Application/AT+JWT", True), ("JWT", False), ("jwt", False), (None, False),
    (["at+jwt"], False), ("at+jwt ", False),
])
def test_typ_is_compared_as_a_media_type(key, typ, accepted):
    """RFC 9068 §4: at+jwt, or the full media type, in any case; nothing else."""
    header = {"alg": "RS256", "kid": key.kid, **({} if typ is None else {"typ": typ})}
    token = sign_raw(key, header, json.dumps(claims_for(ISSUER)).encode())
    tokens = RS256Tokens(ACCESS_TOKEN_TYPES)
    if accepted:
        assert tokens.claims(token, _keys(key))
    else:
        with pytest.raises(Refused):
            tokens.claims(token, _keys(key))


def test_a_header_too_long_or_too_deep_is_refused_before_parsing(key):
    """An unverified header cannot make the JSON parser recurse (a RecursionError was a 500)."""
    payload = json.dumps(claims_for(ISSUER)).encode()
    for header in ("[" * 3000, "[" * 300 + "]" * 300, json.dumps(
            {"alg": "RS256", "typ": "at+jwt", "kid": key.kid, "x": "y" * 400})):
        with pytest.raises(Refused):
            RS256Tokens(ACCESS_TOKEN_TYPES).claims(sign_raw(key, header, payload), _keys(key))


def test_an_unknown_kid_or_another_key_is_refused(key):
    token = mint(key, ISSUER)
    with pytest.raises(Refused):
        RS256Tokens(ACCESS_TOKEN_TYPES).claims(token, _keys())
    other = new_key()
    with pytest.raises(Refused):  # our kid, someone else's key
        RS256Tokens(ACCESS_TOKEN_TYPES).claims(token, {key.kid: other.public_key}.get)


@pytest.mark.parametrize("payload", [b"[1, 2]", b"not json", b"\"a string\"",
                                     b"[" * 1500 + b"]" * 1500])  # past the recursion limit
def test_a_payload_that_is_not_a_json_object_is_refused(key, payload):
    token = sign_raw(key, {"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, payload)
    with pytest.raises(Refused):
        RS256Tokens(ACCESS_TOKEN_TYPES).claims(token, _keys(key))


def test_base64url_must_be_canonical(key):
    """joserfc's strict decoding: no padding, no standard-alphabet characters, no
    trailing bits, so a signature has exactly one spelling."""
    token = mint(key, ISSUER)
    tokens = RS256Tokens(ACCESS_TOKEN_TYPES)
    assert tokens.claims(token, _keys(key))
    for spelling in (token + "=", token[:-1] + "+", token + "A", token.replace(".", "..", 1)):
        with pytest.raises(Refused):
            tokens.claims(spelling, _keys(key))


def test_only_headers_our_keys_signed_are_remembered(key):
    """A header is kept once a signature over it verified: a flood of header spellings
    under forged signatures leaves nothing behind, and a remembered header never vouches
    for a payload it was not signed with."""
    tokens = RS256Tokens(ACCESS_TOKEN_TYPES)
    attacker = new_key()
    payload = json.dumps(claims_for(ISSUER)).encode()
    for spaces in range(100):
        header = json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, indent=spaces)
        with pytest.raises(Refused):
            tokens.claims(sign_raw(attacker, header, payload), _keys(key))
    assert tokens._verified_headers == {}

    token = mint(key, ISSUER)
    assert tokens.claims(token, _keys(key))
    assert list(tokens._verified_headers.values()) == [key.kid]
    header, _, signature = token.split(".")
    forged = sign_raw(attacker, "{}", json.dumps(claims_for(ISSUER, sub="admin")).encode())
    with pytest.raises(Refused):
        tokens.claims(f"{header}.{forged.split('.')[1]}.{signature}", _keys(key))
    # and a remembered header is still checked against the keys of the moment
    with pytest.raises(Refused):
        tokens.claims(token, _keys())


def test_the_remembered_headers_are_bounded_and_start_over_when_full(key):
    tokens = RS256Tokens(ACCESS_TOKEN_TYPES)
    payload = json.dumps(claims_for(ISSUER)).encode()
    for spaces in range(MAX_REMEMBERED_HEADERS + 10):
        header = json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, indent=spaces)
        assert tokens.claims(sign_raw(key, header, payload), _keys(key))
        assert len(tokens._verified_headers) <= MAX_REMEMBERED_HEADERS
    assert len(tokens._verified_headers) == 10  # full at 64, then started over


def test_a_header_remembered_for_one_type_does_not_pass_another(key):
    """The IdP checks access tokens and ID tokens with two instances: each its own types."""
    id_tokens = RS256Tokens(frozenset({"jwt"}))
    access_tokens = RS256Tokens(ACCESS_TOKEN_TYPES)
    token = mint(key, ISSUER, header={"typ": "JWT"})
    assert id_tokens.claims(token, _keys(key))
    with pytest.raises(Refused):
        access_tokens.claims(token, _keys(key))


@pytest.mark.parametrize("token", [None, 42, "", "a.b", "a.b.c.d", "é.b.c", "x" * 9000])
def test_anything_else_is_refused(key, token):
    with pytest.raises(Refused):
        RS256Tokens(ACCESS_TOKEN_TYPES).claims(token, _keys(key))


def test_base64url_gives_joserfcs_verdicts_on_every_spelling():
    """The decoder agrees with joserfc's strict one: the same bytes for every canonical
    spelling, and a refusal for each malformed one, at every length's padding."""
    for length in range(0, 70):
        data = os.urandom(length)
        spelling = base64.urlsafe_b64encode(data).rstrip(b"=")
        assert base64url_decode(spelling) == urlsafe_b64decode(spelling) == data
        flipped = spelling[:-1] + bytes([spelling[-1] ^ 1]) if spelling else b""
        for bad in (spelling + b"=", spelling + b"==", spelling + b"A", b" " + spelling,
                    spelling + b"\n", spelling.replace(b"-", b"+").replace(b"_", b"/"),
                    flipped, spelling[:len(spelling) // 2] + b"." + spelling[len(spelling) // 2:]):
            verdicts = []
            for decode in (base64url_decode, urlsafe_b64decode):
                try:
                    verdicts.append(decode(bad))
                except ValueError:  # binascii.Error is one
                    verdicts.append("refused")
            assert verdicts[0] == verdicts[1], (length, bad)
