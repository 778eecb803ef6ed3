"""Federation: upstream identity providers brokered into local identities.

Modelled on dex's connectors: a protocol class turns an upstream login into an
``Identity`` and nothing more. Connectors never issue tokens, never touch the database
or the store, and keep no request state; the server owns state (``state``, nonces, SAML
request ids) and hands back what a connector asked it to keep.
"""
