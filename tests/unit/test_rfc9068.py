"""The RFC 9068 rules (idp/rfc9068.py), and the IdP's own validator applying them."""

import pytest

from idp import rfc9068
from idp.errors import Unauthorized
from idp.token_validation import AccessTokenValidator
from tests.keyserver import AUDIENCE, claims_for, mint, new_key

ISSUER = "https://id.infracast.example"
NOW = 1_800_000_000
LEEWAY = 30


def _claims(**overrides) -> dict:
    return claims_for(ISSUER, **overrides)


def _check(claims: dict) -> None:
    rfc9068.check_claims(claims, issuer=ISSUER, audience=AUDIENCE, now=NOW, leeway=LEEWAY)


@pytest.mark.parametrize("claims", [
    _claims(exp=NOW + 600, iat=NOW, nbf=NOW),
    _claims(exp=NOW - LEEWAY + 1, iat=NOW - 600, nbf=NOW - 600),  # within the leeway
    _claims(exp=NOW + 600, iat=NOW + LEEWAY, nbf=NOW + LEEWAY),  # skew both ways
    _claims(exp=10 ** 400, iat=NOW, nbf=None),  # a huge int is still a number
    _claims(exp=float(NOW + 600), iat=float(NOW), aud=["other-api", AUDIENCE]),
])
def test_good_claims_pass(claims):
    _check(claims)


@pytest.mark.parametrize("overrides", [
    {"iss": "https://elsewhere.example"},
    {"aud": None}, {"aud": "other-api"}, {"aud": ["other-api"]}, {"aud": {AUDIENCE: 1}},
    {"exp": None}, {"exp": NOW - LEEWAY}, {"exp": "9999999999"}, {"exp": True},
    {"exp": float("nan")}, {"exp": float("inf")},
    {"iat": None}, {"iat": NOW + LEEWAY + 1}, {"iat": float("nan")}, {"iat": False},
    {"nbf": NOW + LEEWAY + 1}, {"nbf": float("-inf")}, {"nbf": "0"},
    {"sub": None}, {"sub": ""}, {"sub": 7},
    {"client_id": None}, {"client_id": ""},
    {"jti": None}, {"jti": ["a"]},
])
def test_claims_breaking_a_rule_are_refused(overrides):
    with pytest.raises(rfc9068.InvalidClaims):
        _check(_claims(**{"exp": NOW + 600, "iat": NOW, "nbf": NOW, **overrides}))


def test_expired_means_now_is_not_before_exp_plus_leeway():
    """RFC 7519 §4.1.4: the current time must be before exp (here, exp + leeway)."""
    _check(_claims(exp=NOW - LEEWAY + 0.5, iat=NOW - 600, nbf=None))
    with pytest.raises(rfc9068.InvalidClaims):
        _check(_claims(exp=NOW - LEEWAY, iat=NOW - 600, nbf=None))


class _OneKey:
    """The keyring interface the validator uses, holding one local key."""

    def __init__(self, key):
        self.key = key

    def verification_key(self, kid):
        return self.key if kid == self.key.kid else None


@pytest.fixture(scope="module")
def key():
    return new_key()


def _validator(key):
    return AccessTokenValidator(_OneKey(key), revocations=None, issuer=ISSUER,
                                audience=AUDIENCE, clock=lambda: NOW)


@pytest.mark.parametrize("header", [{"typ": "application/at+jwt"}, {"typ": "AT+JWT"}])
def test_the_idp_accepts_every_spelling_of_the_type(key, header):
    token = mint(key, ISSUER, header=header, exp=NOW + 600, iat=NOW, nbf=NOW)
    assert _validator(key).verify(token)["sub"] == "user-1"


@pytest.mark.parametrize("claims", [
    {"iat": None}, {"client_id": None}, {"exp": float("inf")}, {"iat": float("nan")},
    {"exp": NOW - LEEWAY},
])
def test_the_idp_applies_the_same_claim_rules(key, claims):
    token = mint(key, ISSUER, **{"exp": NOW + 600, "iat": NOW, "nbf": NOW, **claims})
    with pytest.raises(Unauthorized):
        _validator(key).verify(token)


def test_the_idp_refuses_tokens_longer_than_the_limit(key):
    padding = "x" * rfc9068.MAX_TOKEN_LENGTH
    token = mint(key, ISSUER, exp=NOW + 600, iat=NOW, nbf=NOW, padding=padding)
    with pytest.raises(Unauthorized):
        _validator(key).verify(token)
    assert len(mint(key, ISSUER, exp=NOW + 600, iat=NOW, nbf=NOW)) < rfc9068.MAX_TOKEN_LENGTH
