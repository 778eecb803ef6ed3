"""The database side of the interfaces ``idp`` and ``keys`` declare.

``idp`` and ``keys`` never import the ORM; they get these objects from the service
container and see plain dataclasses (``Account``, ``RegisteredClient``, ``KeyRecord``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from idp.accounts import Account
from idp.api_keys import ApiKeyRecord
from idp.clients import API_CLIENT_ID, CLIENT_ID_PATTERN, RegisteredClient, api_client
from idp.consents import Consent
from idp.hashing import SecretHasher
from idp.clock import now
from idp.revocation import COPY_PENDING, GRANT, SID, USER, RevocationRecord, grant
from keys.manager import ACTIVE, NEXT, RETIRED, KeyRecord

from .extensions import autocommit, db
from .models import ApiKey, Client, Membership, Revocation, SigningKey, Tenant, User, utcnow
from .models import Consent as ConsentRow


def account_from(user: User, revoked_before: datetime | None = None) -> Account:
    return Account(
        id=user.id,
        username=user.username,
        email=user.email,
        disabled=user.disabled,
        platform_roles=tuple(user.platform_roles or ()),
        memberships={m.tenant_id: m.role for m in user.memberships},
        name=user.name,
        email_verified=user.email_verified,
        password_hash=user.password_hash,
        revoked_before=None if revoked_before is None else revoked_before.timestamp(),
    )


class SqlAccountDirectory:
    """Accounts as the token service needs them: one prepared statement, one round trip."""

    def __init__(self):
        # the user, a row per membership, the user's live revocation watermark, and those of
        # one grant and one refresh family when asked; built once, so each lookup only binds
        # its parameters
        u, m, r = User.__table__.c, Membership.__table__.c, Revocation.__table__.c
        watermark = sa.select(r.revoked_at).where(
            r.kind == USER, r.subject == u.id, r.expires_at > sa.bindparam("now")
        ).scalar_subquery()
        grant_watermark = sa.select(r.revoked_at).where(
            r.kind == GRANT, r.subject == sa.bindparam("grant"), r.expires_at > sa.bindparam("now")
        ).scalar_subquery()
        family_ended = sa.select(r.revoked_at).where(
            r.kind == SID, r.subject == sa.bindparam("family"), r.expires_at > sa.bindparam("now")
        ).scalar_subquery()
        select = (sa.select(u.id, u.username, u.email, u.email_verified, u.name,
                            u.password_hash, u.platform_roles, u.disabled, m.tenant_id, m.role,
                            watermark.label("revoked_before"),
                            grant_watermark.label("grant_revoked_before"),
                            family_ended.label("family_ended_at"))
                  .select_from(User.__table__.outerjoin(Membership.__table__, m.user_id == u.id)))
        self._by_id = select.where(u.id == sa.bindparam("key"))
        self._by_username = select.where(u.username == sa.bindparam("key"))

    def find_by_username(self, username: str) -> Account | None:
        return self._one(self._by_username, username)

    def find_by_id(self, user_id: str, client_id: str | None = None,
                   family_id: str | None = None) -> Account | None:
        """The account, with ``client_id`` the watermark of the user's grant to it, and with
        ``family_id`` whether that refresh family was ended."""
        return self._one(self._by_id, user_id, grant(user_id, client_id) if client_id else "",
                         family_id or "")

    @staticmethod
    def _one(query, key: str, grant_subject: str = "", family_id: str = "") -> Account | None:
        read_at = now()
        with autocommit() as conn:
            rows = conn.execute(query, {"key": key, "grant": grant_subject, "family": family_id,
                                        "now": datetime.fromtimestamp(read_at, timezone.utc)}).all()
        if not rows:
            return None
        user = rows[0]
        return Account(
            id=user.id, username=user.username, email=user.email, disabled=user.disabled,
            platform_roles=tuple(user.platform_roles or ()),
            memberships={row.tenant_id: row.role for row in rows if row.tenant_id is not None},
            name=user.name, email_verified=user.email_verified, password_hash=user.password_hash,
            revoked_before=None if user.revoked_before is None else user.revoked_before.timestamp(),
            grant_revoked_before=None if user.grant_revoked_before is None
            else user.grant_revoked_before.timestamp(),
            family_ended=user.family_ended_at is not None,
            read_at=read_at,
        )

    def replace_password_hash(self, user_id: str, password_hash: str) -> None:
        db.session.execute(sa.update(User).where(User.id == user_id).values(password_hash=password_hash))
        db.session.commit()

    def tenant_exists(self, tenant_id: str) -> bool:
        return db.session.get(Tenant, tenant_id) is not None


def client_from(row: Client, hasher: SecretHasher) -> RegisteredClient:
    return RegisteredClient(
        client_id=row.client_id,
        client_name=row.client_name,
        token_endpoint_auth_method=row.token_endpoint_auth_method,
        secret_hash=row.client_secret_hash,
        redirect_uris=tuple(row.redirect_uris or ()),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
        grant_types=tuple(row.grant_types or ()),
        response_types=tuple(row.response_types or ()),
        scope=row.scope or "",
        first_party=row.first_party,
        tenant_permissions=dict(row.tenant_permissions or {}),
        resource_server=row.resource_server,
        hasher=hasher,
    )


class SqlClientDirectory:
    """Registered clients, kept per process for ``cache_seconds``.

    Every token request authenticates its client, often more than once (Authlib tries each
    authentication method in turn), so reading the row each time would put a database
    round trip on every grant. How stale this can be: a change to a client (deleted, grant
    types or redirect URIs changed) reaches the other workers within ``cache_seconds``;
    this worker sees its own changes at once. A deleted client's revocation watermark
    reaches ``cache_seconds`` past its deletion (``app.clients.delete_client``), so what
    another worker issues it meanwhile is revoked too.
    """

    table = Client.__table__

    def __init__(self, hasher: SecretHasher, cache_seconds: float = 10.0, max_entries: int = 4096,
                 monotonic=time.monotonic):
        self.hasher = hasher
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._cache: OrderedDict[str, tuple[float, RegisteredClient | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._api_client = api_client()

    def find(self, client_id: str) -> RegisteredClient | None:
        if client_id == API_CLIENT_ID:
            return self._api_client
        if not isinstance(client_id, str) or not CLIENT_ID_PATTERN.fullmatch(client_id):
            return None
        now = self._monotonic()
        cached = self._cache.get(client_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        with autocommit() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.client_id == client_id)).first()
        client = None if row is None else client_from(row, self.hasher)
        with self._lock:
            # unknown ids are remembered too (briefly, and within a bounded LRU)
            self._cache[client_id] = (now + self.cache_seconds, client)
            self._cache.move_to_end(client_id)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return client

    def forget(self, client_id: str) -> None:
        """Drop a client this worker changed, so its own next request reads it afresh."""
        with self._lock:
            self._cache.pop(client_id, None)


class SqlConsentDirectory:
    """Consents apart from any request's session: single statements on autocommit
    connections, and one short transaction to merge a grant."""

    table = ConsentRow.__table__

    def _select(self):
        c = self.table.c
        return (sa.select(c.user_id, c.client_id, c.scope, c.granted_at,
                          Client.client_name)
                .join(Client, Client.client_id == c.client_id))

    @staticmethod
    def _consent(row) -> Consent:
        return Consent(user_id=row.user_id, client_id=row.client_id,
                       client_name=row.client_name, scopes=tuple(row.scope.split()),
                       granted_at=row.granted_at)

    def find(self, user_id: str, client_id: str) -> Consent | None:
        c = self.table.c
        with autocommit() as conn:
            row = conn.execute(self._select().where(
                c.user_id == user_id, c.client_id == client_id)).first()
        return None if row is None else self._consent(row)

    def grant(self, user_id: str, client_id: str, scopes: list[str]) -> None:
        """Remember ``scopes`` on top of what was allowed before.

        The consent is locked before it is read, until the write commits: a withdrawal at
        that moment waits and then removes the whole consent, instead of being undone by a
        write of what it had just removed; and of two grants at once the second merges with
        the first, whether or not a consent was there before.
        """
        c = self.table.c
        this = sa.and_(c.user_id == user_id, c.client_id == client_id)
        key = [c.user_id, c.client_id]
        with db.engine.begin() as conn:
            existing = self._locked_scope(conn, this)
            if existing is None:
                # none yet; a grant at the same moment may insert one first, and then this
                # one waits for it and merges with it below (instead of overwriting it)
                first = _upsert_insert(conn)(self.table).values(
                    user_id=user_id, client_id=client_id, scope=" ".join(sorted(set(scopes))),
                    granted_at=utcnow())
                inserted = conn.execute(first.on_conflict_do_nothing(index_elements=key),
                                        execution_options={"preserve_rowcount": True}).rowcount
                if inserted == 1:
                    return
                existing = self._locked_scope(conn, this)
            merged = " ".join(sorted(set(scopes) | set((existing or "").split())))
            insert = _upsert_insert(conn)(self.table).values(
                user_id=user_id, client_id=client_id, scope=merged, granted_at=utcnow())
            conn.execute(insert.on_conflict_do_update(
                index_elements=key,
                set_={"scope": insert.excluded.scope, "granted_at": insert.excluded.granted_at}))

    def _locked_scope(self, conn, this) -> str | None:
        """The consent's scopes, read after a write that changes nothing has taken the lock:
        the row's on PostgreSQL, the database's on SQLite (where FOR UPDATE does nothing and
        a SELECT alone runs outside the transaction)."""
        c = self.table.c
        conn.execute(sa.update(self.table).where(this).values(scope=c.scope))
        return conn.execute(sa.select(c.scope).where(this)).scalar()

    def list_for(self, user_id: str) -> list[Consent]:
        c = self.table.c
        with autocommit() as conn:
            rows = conn.execute(self._select().where(c.user_id == user_id)
                                .order_by(c.client_id)).all()
        return [self._consent(row) for row in rows]

    def revoke(self, user_id: str, client_id: str) -> bool:
        c = self.table.c
        with autocommit() as conn:
            result = conn.execute(sa.delete(self.table).where(
                c.user_id == user_id, c.client_id == client_id))
        return result.rowcount == 1


def _record(row) -> KeyRecord:
    return KeyRecord(
        kid=row.kid, state=row.state, public_jwk=row.public_jwk,
        sealed_private=row.sealed_private, created_at=row.created_at, alg=row.alg,
        activated_at=row.activated_at, retired_at=row.retired_at,
        publish_until=row.publish_until,
    )


class _LostRace(Exception):
    """Raised inside a transaction to roll it back when a compare-and-swap misses."""


def _values(record: KeyRecord) -> dict:
    return dict(
        kid=record.kid, alg=record.alg, state=record.state, public_jwk=record.public_jwk,
        sealed_private=record.sealed_private, created_at=record.created_at,
        activated_at=record.activated_at, retired_at=record.retired_at,
        publish_until=record.publish_until,
    )


class SqlKeyRepository:
    """Keys through their own short transactions, apart from any request's session."""

    table = SigningKey.__table__

    def _select(self, *where) -> list[KeyRecord]:
        query = sa.select(self.table).where(*where).order_by(self.table.c.created_at)
        with autocommit() as conn:
            return [_record(row) for row in conn.execute(query)]

    def list_published(self, now: datetime) -> list[KeyRecord]:
        c = self.table.c
        return self._select(sa.or_(c.state != RETIRED, c.publish_until > now))

    def list_all(self) -> list[KeyRecord]:
        return self._select()

    def insert(self, record: KeyRecord) -> bool:
        try:
            with db.engine.begin() as conn:
                conn.execute(sa.insert(self.table).values(**_values(record)))
        except IntegrityError:
            return False
        return True

    def insert_next(self, record: KeyRecord) -> bool:
        c = self.table.c
        try:
            with db.engine.begin() as conn:
                # A no-op write to the active row serialises every writer of a next key:
                # PostgreSQL holds its row lock, SQLite its write lock, until commit, so
                # the count below already sees a racer's committed key.
                locked = conn.execute(sa.update(self.table).where(c.state == ACTIVE)
                                      .values(state=ACTIVE)).rowcount
                pending = conn.execute(sa.select(sa.func.count()).select_from(self.table)
                                       .where(c.state == NEXT)).scalar_one()
                if locked != 1 or pending:
                    raise _LostRace
                conn.execute(sa.insert(self.table).values(**_values(record)))
        except _LostRace:
            return False
        return True

    def promote(self, next_kid: str, active_kid: str, *, at: datetime,
                publish_until: datetime) -> bool:
        c = self.table.c
        try:
            with db.engine.begin() as conn:
                # retire first: the unique index admits one active row at every statement
                retired = conn.execute(
                    sa.update(self.table).where(c.kid == active_kid, c.state == ACTIVE)
                    .values(state=RETIRED, retired_at=at, publish_until=publish_until)).rowcount
                if retired != 1:
                    raise _LostRace
                activated = conn.execute(
                    sa.update(self.table).where(c.kid == next_kid, c.state == NEXT)
                    .values(state=ACTIVE, activated_at=at)).rowcount
                if activated != 1:
                    raise _LostRace
        except _LostRace:
            return False
        return True


class SqlDurableRevocations:
    """Revocation records in their own short transactions, committed before Redis is told."""

    table = Revocation.__table__

    def record(self, record: RevocationRecord) -> None:
        c = self.table.c
        with db.engine.begin() as conn:
            insert = _upsert_insert(conn)(self.table).values(
                kind=record.kind, subject=record.subject, revoked_at=record.revoked_at,
                expires_at=record.expires_at)
            # a later revocation moves a watermark forward and never shortens a lifetime
            latest = sa.func.greatest if conn.dialect.name == "postgresql" else sa.func.max
            conn.execute(insert.on_conflict_do_update(
                index_elements=[c.kind, c.subject],
                set_={"revoked_at": latest(c.revoked_at, insert.excluded.revoked_at),
                      "expires_at": latest(c.expires_at, insert.excluded.expires_at)}))

    def active(self, now: datetime) -> list[RevocationRecord]:
        c = self.table.c
        with db.engine.begin() as conn:
            conn.execute(sa.delete(self.table).where(c.expires_at <= now, c.kind != COPY_PENDING))
            rows = conn.execute(sa.select(self.table).where(c.kind != COPY_PENDING)).all()
        return [RevocationRecord(r.kind, r.subject, r.revoked_at, r.expires_at) for r in rows]

    def latest(self) -> datetime | None:
        c = self.table.c
        with autocommit() as conn:
            return conn.execute(sa.select(sa.func.max(c.revoked_at)).where(
                c.kind != COPY_PENDING, c.expires_at > utcnow())).scalar()

    # the "Redis copy may be incomplete" mark lives in the same table, under a kind of its own
    def mark_copy_pending(self, at: datetime) -> None:
        self.record(RevocationRecord(COPY_PENDING, "redis", at, at + timedelta(days=3650)))

    def copy_pending(self) -> bool:
        c = self.table.c
        with autocommit() as conn:
            return conn.execute(sa.select(c.kind).where(c.kind == COPY_PENDING)).first() is not None

    def clear_copy_pending(self, up_to: datetime) -> None:
        c = self.table.c
        with autocommit() as conn:
            conn.execute(sa.delete(self.table).where(c.kind == COPY_PENDING,
                                                     c.revoked_at <= up_to))


def _upsert_insert(conn):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def api_key_record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id, name=row.name, tenants=tuple(row.tenants), permissions=tuple(row.permissions),
        allowed_ips=tuple(row.allowed_ips or ()), created_by=row.created_by,
        created_at=row.created_at, issued_at=row.rotated_at or row.created_at,
        expires_at=row.expires_at, revoked=row.revoked_at is not None,
        last_used_at=row.last_used_at,
    )


class SqlApiKeyDirectory:
    # last_used_at is written at most this often per key: a write per request would cost
    # more than the lookup it records
    TOUCH_INTERVAL = timedelta(seconds=60)

    def find_by_secret_digest(self, digest: str, now: datetime) -> ApiKeyRecord | None:
        c = ApiKey.__table__.c
        query = sa.select(ApiKey.__table__).where(sa.or_(
            c.secret_hash == digest,
            sa.and_(c.previous_secret_hash == digest, c.previous_valid_until > now)))
        with autocommit() as conn:
            row = conn.execute(query).first()
        return None if row is None else api_key_record(row)

    def mark_used(self, record: ApiKeyRecord, now: datetime) -> None:
        if record.last_used_at is not None and record.last_used_at > now - self.TOUCH_INTERVAL:
            return  # recorded recently enough: no write on this request
        c = ApiKey.__table__.c
        with autocommit() as conn:
            conn.execute(sa.update(ApiKey.__table__).where(
                c.id == record.id,
                sa.or_(c.last_used_at.is_(None), c.last_used_at < now - self.TOUCH_INTERVAL),
            ).values(last_used_at=now))
