"""The standard OAuth 2.0 / OpenID Connect endpoints under ``/oauth`` (contract §4)."""
