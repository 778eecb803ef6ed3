"""Signing in through a SAML identity provider (issue 8), through the Flask test client.

The IdP is real (pysaml2's IdP classes, Responses signed by xmlsec1); the attacks are the
ones of ``tests/federation/test_saml_connector.py``, here at the HTTP level: none may
create a user or lead the browser back to the relying party with a code. The same flow
over real HTTP against gunicorn is ``tests/e2e/test_sso_over_http.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import zlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from freezegun import freeze_time
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_UNSPECIFIED

from app import create_app
from app.extensions import services
from federation.saml import MAX_RESPONSE_CHARS, sp_metadata
from tests.conftest import audit_events, base_config
from tests.federation.conftest import IDP_ENTITY_ID, SSO_URL
from tests.federation.saml_idp import SigningIdP, make_key_pair, post
from tests.integration.sso.conftest import (ACS_URL, SP_ENTITY_ID, SamlLogin, created,
                                            federated_users, lands_on_relying_party, start_saml)
from tests.oidc import REDIRECT_URI
from tests.sso import SAML_ATTACKS, saml_body

APP_START = "https://app.example.test/start"
OTHER_ENTITY_ID = "https://other-idp.example.test/saml/metadata"


@pytest.fixture
def saml(configure, saml_idp, make_tenant):
    """A SAML connection mapping the IdP's group "ops" to editor in "acme"."""
    acme = make_tenant("acme")
    return configure("saml", saml_body(saml_idp, group_mappings={"ops": [{"id": acme,
                                                                          "role": "editor"}]}))


def test_a_signed_response_signs_the_user_in_and_the_next_login_reaches_the_same_user(
        sso_app, browser, rp, saml_idp, saml):
    login = start_saml(browser, rp, saml_idp)
    assert login.request.acs_url == ACS_URL and login.request.issuer == SP_ENTITY_ID
    posted = login.post(login.respond())
    # the ACS answers the IdP's cross-site POST with a redirect the browser follows by GET
    assert posted.status_code == 303
    assert posted.headers["Location"].startswith("/api/v1/auth/sso/saml/complete?id=")
    landed = browser.get(posted.headers["Location"])
    assert lands_on_relying_party(landed)
    body = rp.exchange(rp.callback(landed)["code"]).get_json()
    assert body["access_token"]
    [user] = federated_users(sso_app)
    assert user == {**user, "username": "saml.user-1", "email": "ada@example.test",
                    "email_verified": False, "name": "Ada Lovelace", "password_hash": None,
                    "provider": "saml", "upstream": IDP_ENTITY_ID, "subject": "user-1",
                    "tenants": {"acme": "editor"}}

    other = sso_app.test_client()
    rp.http = other
    again = start_saml(other, rp, saml_idp)
    landed = again.complete(again.respond(attributes={"email": ["ada@example.test"],
                                                      "name": ["Ada King"], "groups": []}))
    assert lands_on_relying_party(landed)
    [updated] = federated_users(sso_app)
    assert (updated["id"], updated["name"], updated["tenants"]) == (user["id"], "Ada King", {})
    assert created(sso_app) == (2, 1)
    assert [e["outcome"] for e in audit_events(sso_app, "sso.login")] == ["success", "success"]


def test_a_head_request_does_not_spend_the_completion(browser, rp, saml_idp, saml):
    login = start_saml(browser, rp, saml_idp)
    posted = login.post(login.respond())
    head = browser.head(posted.headers["Location"])
    assert head.status_code == 405 and head.headers["Allow"] == "GET"
    assert lands_on_relying_party(browser.get(posted.headers["Location"]))


def test_the_seed_code_exchange_works_for_a_saml_code(browser, rp, saml_idp, saml):
    login = start_saml(browser, rp, saml_idp)
    code = rp.callback(login.complete(login.respond()))["code"]
    seed = browser.post("/api/v1/auth/token", json={
        "code": code, "redirect_uri": REDIRECT_URI, "client_id": rp.client_id,
        "code_verifier": rp.verifier})
    assert seed.status_code == 200
    assert seed.get_json()["user"]["tenants"] == [{"id": "acme", "role": "editor"}]


def test_the_login_page_offers_saml_and_idp_hint_goes_there(browser, rp, saml_idp, saml):
    login_page = browser.get(rp.authorize().headers["Location"]).get_data(True)
    assert "Sign in with your organisation&#39;s single sign-on" in login_page
    hinted = rp.authorize(idp_hint="saml")
    assert hinted.status_code == 302 and hinted.headers["Location"].startswith(
        "https://idp.example.test/saml/sso?SAMLRequest=")


def test_prompt_login_or_max_age_asks_the_idp_for_a_fresh_authentication(browser, rp, saml_idp,
                                                                         saml):
    assert start_saml(browser, rp, saml_idp).request.force_authn is False
    assert start_saml(browser, rp, saml_idp, prompt="login").request.force_authn is True
    assert start_saml(browser, rp, saml_idp,
                      prompt="select_account").request.force_authn is True
    assert start_saml(browser, rp, saml_idp, max_age="300").request.force_authn is True


def test_sp_metadata(browser):
    response = browser.get("/api/v1/auth/sso/saml/metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/samlmetadata+xml")
    xml = response.get_data(True)
    assert f'entityID="{SP_ENTITY_ID}"' in xml and f'Location="{ACS_URL}"' in xml
    assert 'WantAssertionsSigned="true"' in xml


# -- every attack: an error page, no user, no code ------------------------------------------

def refused_at_the_acs(sso_app, response) -> None:
    page = response.get_data(True)
    assert response.status_code in (400, 401), page[:500]
    if response.status_code == 401:  # contract §2, RFC 9110 §15.5.2: a 401 names a challenge
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert 'role="alert"' in page and "root:" not in page
    assert "Location" not in response.headers
    assert created(sso_app) == (1, 0)  # the admin alone


@pytest.mark.parametrize("attack", SAML_ATTACKS)
def test_an_attack_is_refused_and_creates_nothing(sso_app, browser, rp, saml_idp, saml, attack):
    respond, rule = SAML_ATTACKS[attack]
    login = start_saml(browser, rp, saml_idp)
    refused_at_the_acs(sso_app, login.post(respond(login)))
    [failure] = audit_events(sso_app, "sso.login")
    assert failure["outcome"] == "failure" and failure["details"]["reason"] == "rejected"
    assert rule in failure["details"]["detail"]
    # and the genuine Response of that login no longer works either: its state is used
    refused_at_the_acs(sso_app, login.post(login.respond()))


def test_a_replayed_response_is_refused(sso_app, browser, rp, saml_idp, saml):
    login = start_saml(browser, rp, saml_idp)
    xml = login.respond()
    assert lands_on_relying_party(login.complete(xml))
    replay = login.post(xml)
    assert replay.status_code == 401 and "Location" not in replay.headers
    # with the RelayState of a fresh login of the same browser: not the request it answers
    fresh = start_saml(browser, rp, saml_idp, prompt="login")
    assert fresh.post(xml).status_code == 401
    assert created(sso_app) == (2, 1)


def test_a_name_id_the_database_could_not_hold_is_refused_and_audited(sso_app, browser, rp,
                                                                      saml_idp, saml):
    login = start_saml(browser, rp, saml_idp)
    refused_at_the_acs(sso_app, login.post(login.respond(name_id="user\x7f1")))
    [failure] = audit_events(sso_app, "sso.login")
    assert failure["details"]["reason"] == "rejected"
    assert "NameID has control characters" in failure["details"]["detail"]


def _with_name_id_policy(redirect_url: str, name_id_format: str) -> str:
    """What the user's own browser can do to the AuthnRequest it carries: it is sent
    unsigned by HTTP-Redirect (``AuthnRequestsSigned="false"``), so its NameIDPolicy
    Format is the user's to choose."""
    parts = urlsplit(redirect_url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"]), -15).decode()
    xml = re.sub(r'(NameIDPolicy[^>]*Format=")[^"]*(")', rf"\g<1>{name_id_format}\g<2>", xml)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    query["SAMLRequest"] = base64.b64encode(deflater.compress(xml.encode())
                                            + deflater.flush()).decode()
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def test_a_name_id_of_another_format_does_not_reach_the_user_of_that_value(
        sso_app, browser, rp, saml_idp, configure):
    """saml-core §2.2.2, §8.3: a NameID value is unique only with its Format. With
    ``name_id_format: emailAddress`` Alice is linked under ``alice@corp.example``; a user who
    rewrites the unsigned AuthnRequest to ask for an ``unspecified`` NameID (at many IdPs the
    user name, which they may choose) and gets ``alice@corp.example`` in that format must
    not be signed in as Alice."""
    configure("saml", saml_body(saml_idp, name_id_format="emailAddress"))
    victim = start_saml(browser, rp, saml_idp)
    assert lands_on_relying_party(victim.complete(victim.respond(
        name_id="alice@corp.example", name_id_format=NAMEID_FORMAT_EMAILADDRESS)))
    [alice] = federated_users(sso_app)

    attacker = sso_app.test_client()
    started = attacker.get("/api/v1/auth/sso/saml/login", query_string=rp.params())
    assert started.status_code == 302
    request = saml_idp.read_request(_with_name_id_policy(started.headers["Location"],
                                                         NAMEID_FORMAT_UNSPECIFIED))
    assert request.name_id_format == NAMEID_FORMAT_UNSPECIFIED  # the IdP takes the request
    login = SamlLogin(saml_idp, request, ACS_URL, SP_ENTITY_ID, attacker)
    posted = login.post(login.respond(
        name_id="alice@corp.example", name_id_format=request.name_id_format,
        attributes={"email": ["mallory@corp.example"], "name": ["Mallory"], "groups": []}))

    assert posted.status_code == 401 and "Location" not in posted.headers
    assert federated_users(sso_app) == [alice]  # not renamed Mallory either
    success, failure = audit_events(sso_app, "sso.login")
    assert failure["outcome"] == "failure" and failure["details"]["reason"] == "rejected"
    assert "NameID Format" in failure["details"]["detail"]


def test_an_email_attribute_that_is_no_address_is_not_kept(sso_app, browser, rp, saml_idp, saml):
    # the connector passes it on; brokering keeps only what validate_email accepts
    login = start_saml(browser, rp, saml_idp)
    assert lands_on_relying_party(login.complete(login.respond(
        attributes={"email": ["not-an-address"], "name": ["Ada"]})))
    assert federated_users(sso_app)[0]["email"] is None


def test_sign_in_is_refused_once_the_idp_certificate_expired_also_on_a_warm_worker(
        sso_app, browser, rp, saml_idp, configure, tmp_path):
    """README: once the IdP certificate has expired, sign-ins are refused (503). A worker
    checks the certificate when it builds the connector, then reuses the connector while
    the row is unchanged, and neither xmlsec1 (``--pubkey-cert-pem``) nor pysaml2 looks at
    the validity period: the built connector must not outlive the certificate."""
    expiring = make_key_pair(tmp_path, "expiring", days=60 / 86400)  # a minute from now
    configure("saml", {**saml_body(saml_idp), "certificate": expiring.cert_pem})
    first = start_saml(browser, rp, saml_idp)
    assert lands_on_relying_party(first.complete(first.respond(keys=expiring)))  # built
    rp.http = later = sso_app.test_client()
    in_flight = start_saml(later, rp, saml_idp)

    with freeze_time(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=2)):
        answered_late = in_flight.post(in_flight.respond(keys=expiring))
        started_late = later.get("/api/v1/auth/sso/saml/login", query_string=rp.params())

    assert (answered_late.status_code, started_late.status_code) == (503, 503)
    assert created(sso_app) == (2, 1)
    reasons = [e["details"]["reason"] for e in audit_events(sso_app, "sso.login")
               if e["outcome"] == "failure"]
    assert reasons == ["misconfigured", "misconfigured"]  # as on a worker that builds it now


def test_a_tampered_relay_state_is_refused(sso_app, browser, rp, saml_idp, saml):
    login = start_saml(browser, rp, saml_idp)
    refused_at_the_acs(sso_app, login.post(login.respond(), relay_state="x" * 43))


def test_a_completion_in_another_browser_or_twice_is_refused(sso_app, browser, rp, saml_idp, saml):
    login = start_saml(browser, rp, saml_idp)
    posted = login.post(login.respond())
    assert posted.status_code == 303
    stolen = sso_app.test_client().get(posted.headers["Location"])
    assert stolen.status_code == 400 and "another browser" in stolen.get_data(True)
    assert browser.get(posted.headers["Location"]).status_code == 400  # used up
    assert created(sso_app) == (1, 0)
    reasons = [e["details"]["reason"] for e in audit_events(sso_app, "sso.login")]
    assert reasons == ["browser", "state"]


@pytest.fixture(scope="module")
def other_idp(tmp_path_factory) -> SigningIdP:
    """A second SAML IdP (an entity id and a key of its own) that trusts our SP."""
    return SigningIdP(tmp_path_factory.mktemp("other-idp"), OTHER_ENTITY_ID, SSO_URL,
                      sp_metadata(SP_ENTITY_ID, ACS_URL))


def test_a_response_completes_only_under_the_connection_that_verified_it(
        sso_app, browser, rp, saml_idp, other_idp, configure):
    """A NameID is unique only at the IdP that issued it (SAML Core §8.3). A Response IdP A
    signed, verified at the ACS, must not be brokered at the completion step under IdP B,
    which an admin put in A's place meanwhile: there it would reach B's user of that name."""
    configure("saml", {**saml_body(other_idp), "entity_id": OTHER_ENTITY_ID})
    b_browser = sso_app.test_client()
    rp.http = b_browser
    at_b = start_saml(b_browser, rp, other_idp)
    assert lands_on_relying_party(at_b.complete(at_b.respond(name_id="user-1")))
    [b_user] = federated_users(sso_app)

    configure("saml", saml_body(saml_idp))
    rp.http = browser
    at_a = start_saml(browser, rp, saml_idp)
    posted = at_a.post(at_a.respond(name_id="user-1"))
    assert posted.status_code == 303
    configure("saml", {**saml_body(other_idp), "entity_id": OTHER_ENTITY_ID})  # B again

    landed = browser.get(posted.headers["Location"])
    assert landed.status_code == 400 and not lands_on_relying_party(landed)
    assert federated_users(sso_app) == [b_user]
    assert audit_events(sso_app, "sso.login")[-1]["details"]["reason"] == "state"


def _as_the_previous_release_wrote_it(sso_app, location: str) -> None:
    """The completion record behind ``location``, without the connection it was made under."""
    completion = parse_qs(urlsplit(location).query)["id"][0]
    with sso_app.app_context():
        sso = services().sso
        key = sso.store.key("sso-done", completion)
        record = sso.store.get(key)
        del record["connection"]
        sso.store.put(key, record, 120)


def test_a_completion_the_previous_release_stored_is_refused(sso_app, browser, rp, saml_idp,
                                                             saml):
    """It names no connection, so nothing proves the one now configured verified it (a
    rolling deploy: an old worker answered the ACS, a new one the completion). The sign-in
    starts again."""
    login = start_saml(browser, rp, saml_idp)
    posted = login.post(login.respond())
    _as_the_previous_release_wrote_it(sso_app, posted.headers["Location"])
    landed = browser.get(posted.headers["Location"])
    assert landed.status_code == 400 and "sign in again" in landed.get_data(True)
    assert federated_users(sso_app) == []


def test_a_response_too_large_for_the_acs_is_refused(sso_app, browser, rp, saml_idp, saml):
    login = start_saml(browser, rp, saml_idp)
    response = browser.post("/api/v1/auth/sso/saml/acs", data={
        "SAMLResponse": "A" * 700_000, "RelayState": login.request.relay_state})
    assert response.status_code == 413
    assert created(sso_app) == (1, 0)


def test_the_acs_body_limit_allows_for_the_form_encoding_of_base64(sso_app, browser, rp,
                                                                    saml_idp, saml):
    # within MAX_RESPONSE_CHARS, but its "+" are sent as %2B: a fifth more on the wire
    login = start_saml(browser, rp, saml_idp)
    base64_text = ("AAAAAAAAA+" * (MAX_RESPONSE_CHARS // 10))[:MAX_RESPONSE_CHARS - 288]
    response = browser.post("/api/v1/auth/sso/saml/acs", data={
        "SAMLResponse": base64_text, "RelayState": login.request.relay_state})
    assert response.status_code == 401  # the connector read it (and refused it), not 413
    [failure] = audit_events(sso_app, "sso.login")
    assert failure["details"]["reason"] == "rejected"
    assert "too large" not in failure["details"]["detail"]


# -- IdP-initiated ---------------------------------------------------------------------------

def test_idp_initiated_login_goes_to_an_allowlisted_page_signed_in(
        sso_app, browser, rp, saml_idp, configure):
    configure("saml", saml_body(saml_idp, allow_idp_initiated=True,
                                relay_state_allowlist=[APP_START]))
    xml = saml_idp.response(None, ACS_URL, SP_ENTITY_ID)
    posted = browser.post("/api/v1/auth/sso/saml/acs",
                          data={"SAMLResponse": post(xml), "RelayState": APP_START})
    assert posted.status_code == 303
    landed = browser.get(posted.headers["Location"])
    assert landed.status_code == 302 and landed.headers["Location"] == APP_START
    # the application starts its own request, which the IdP session answers at once
    assert lands_on_relying_party(rp.authorize())
    assert created(sso_app) == (2, 1)
    # the same Response again: the replay cache
    replay = browser.post("/api/v1/auth/sso/saml/acs",
                          data={"SAMLResponse": post(xml), "RelayState": APP_START})
    assert replay.status_code == 401 and "already used" in replay.get_data(True)


def test_idp_initiated_login_is_refused_off_the_allowlist_or_when_off(
        sso_app, browser, saml_idp, configure):
    configure("saml", saml_body(saml_idp, allow_idp_initiated=True,
                                relay_state_allowlist=[APP_START]))
    for relay_state in ("https://evil.example.test/", None):
        form = {"SAMLResponse": post(saml_idp.response(None, ACS_URL, SP_ENTITY_ID))}
        if relay_state:
            form["RelayState"] = relay_state
        refused_at_the_acs(sso_app, browser.post("/api/v1/auth/sso/saml/acs", data=form))
    configure("saml", saml_body(saml_idp))
    refused_at_the_acs(sso_app, browser.post("/api/v1/auth/sso/saml/acs", data={
        "SAMLResponse": post(saml_idp.response(None, ACS_URL, SP_ENTITY_ID)),
        "RelayState": APP_START}))


# -- xmlsec1 missing -------------------------------------------------------------------------

class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_without_xmlsec1_saml_answers_503_and_the_rest_works(
        monkeypatch, tmp_path, pg_schema, redis_ns, clean, rp, saml, upstream):
    records = _Records()
    logging.getLogger("infracast.sso").addHandler(records)
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        application = create_app(base_config(
            DATABASE_URL=pg_schema.url, REDIS_URL=redis_ns.url, REDIS_KEY_PREFIX=redis_ns.prefix))
    finally:
        logging.getLogger("infracast.sso").removeHandler(records)
    [error] = [r for r in records.records if r.levelno == logging.ERROR]
    assert "xmlsec1" in error.getMessage() and "apt-get install xmlsec1" in error.getMessage()

    browser = application.test_client()
    metadata = browser.get("/api/v1/auth/sso/saml/metadata")
    assert metadata.status_code == 503
    assert metadata.get_json()["error"] == {
        "code": "UNAVAILABLE",
        "message": "SAML sign-in is not available on this server: the xmlsec1 program is missing."}
    for response in (browser.get("/api/v1/auth/sso/saml/login", query_string=rp.params()),
                     browser.post("/api/v1/auth/sso/saml/acs", data={"SAMLResponse": "x"})):
        assert response.status_code == 503 and "xmlsec1" in response.get_data(True)
    # the rest of the service works: the login page, without the SAML button
    rp.http = browser
    login_page = browser.get(rp.authorize(idp_hint="saml").headers["Location"])
    assert login_page.status_code == 200 and "single sign-on" not in login_page.get_data(True)
    assert browser.get("/healthz").status_code == 200


def test_pysaml2_logs_go_nowhere_once_the_app_configured_logging(sso_app):
    # pysaml2 logs whole documents when a check fails; the app logs its own reasons
    records = _Records()
    logging.getLogger().addHandler(records)
    try:
        logging.getLogger("saml2.client_base").error("<samlp:Response>personal data")
    finally:
        logging.getLogger().removeHandler(records)
    assert records.records == []
