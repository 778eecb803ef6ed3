from tests.helpers import access_token_issuer as _issuer


def _issue(issuer, **kwargs):
    return issuer.issue(subject="u1", client_id="c1", scope="", roles=[], tenants={}, **kwargs)


def test_expires_in_is_the_ttl_for_a_token_issued_now():
    token = _issue(_issuer(lambda: 1_700_000_000.4))
    assert token.expires_in == 900
    assert token.claims["exp"] == 1_700_000_000 + 900


def test_expires_in_counts_what_is_left_of_a_token_that_counts_from_an_earlier_check():
    # the account was read 7.5 s ago (a login queued behind the argon2 gate): the token
    # claims that moment, and the client is told what remains of it, not the whole TTL
    token = _issue(_issuer(lambda: 1_700_000_007.9), checked_at=1_700_000_000.4)
    assert token.claims["iat"] == 1_700_000_000
    assert token.expires_in == 893  # 7 whole seconds of the 900 have gone


def test_a_check_milliseconds_ago_across_a_second_boundary_still_gives_the_whole_ttl():
    token = _issue(_issuer(lambda: 1_700_000_001.01), checked_at=1_700_000_000.99)
    assert token.expires_in == 900


def test_expires_in_is_never_negative():
    token = _issue(_issuer(lambda: 1_700_005_000.0), checked_at=1_700_000_000.0)
    assert token.expires_in == 0
