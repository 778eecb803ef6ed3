"""User names of federated users: derived from the upstream, within the user-name rules."""

import re

import pytest

from app.sso.identities import base_username, link_id
from app.users import MAX_USERNAME
from federation.connector import Identity

# app/users.py: what a user name may be
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,149}$")


@pytest.mark.parametrize("username, subject, expected", [
    ("ada@customer.example", "00u1", "okta.ada@customer.example"),
    (None, "00u1a2b3c4", "okta.00u1a2b3c4"),
    ("Ada.Lovelace@Customer.Example", "x", "okta.ada.lovelace@customer.example"),
    ("José Núñez", "x", "okta.jose-nunez"),
    ("../../etc/passwd", "x", "okta.etc-passwd"),
    ("名前", "x", "okta.user"),
    ("a\nb\tc", "x", "okta.a-b-c"),
])
def test_the_user_name_is_the_provider_and_the_upstream_name(username, subject, expected):
    name = base_username("okta", Identity(subject=subject, username=username))
    assert name == expected and USERNAME.match(name)


def test_a_long_upstream_name_is_cut_to_the_limit():
    name = base_username("saml", Identity(subject="s" * 1024))
    assert len(name) == MAX_USERNAME and USERNAME.match(name)


def test_the_link_is_unique_per_provider_upstream_and_subject():
    ids = {link_id(p, u, s) for p in ("okta", "azure") for u in ("a", "b") for s in ("1", "2")}
    assert len(ids) == 8
    # no ambiguity from concatenation
    assert link_id("okta", "ab", "c") != link_id("okta", "a", "bc")
