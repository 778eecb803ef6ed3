"""``client_secret_basic`` (RFC 6749 §2.3.1), the one encoder the verifier, the tests and
the bench send client credentials with, read back as the IdP (Authlib) reads them."""

import base64

import pytest
from authlib.oauth2.rfc6749.util import extract_basic_authorization

from idp.verifier_introspection import client_secret_basic


@pytest.mark.parametrize("client_id, secret", [
    ("nodes-api", "Zm9v_YmFy-baz"),
    ("odd:id", "p%s w:rd/+ü"),  # the characters Basic alone would mangle
])
def test_the_idp_reads_back_what_is_sent(client_id, secret):
    header = {"Authorization": client_secret_basic(client_id, secret)}
    assert extract_basic_authorization(header) == (client_id, secret)


def test_url_safe_ids_and_secrets_are_plain_basic():
    """Ours are URL-safe: for them the header is what plain Basic always sent."""
    plain = base64.b64encode(b"client-0a1b.c_d:Ab_-9xyz").decode()
    assert client_secret_basic("client-0a1b.c_d", "Ab_-9xyz") == f"Basic {plain}"
