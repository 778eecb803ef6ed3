"""Signing keys: generation, sealing at rest, rotation and JWKS rendering.

This package knows nothing of Flask or the ORM; the app hands it a repository.
"""
