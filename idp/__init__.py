"""The authorization server: Authlib grants and endpoints, the token service, accounts,
refresh families, revocation, brute-force limits, and the store they keep state in.

``idp.verifier`` is the part other services import to check our tokens.
"""
