"""One module per grant type, each a subclass of Authlib's grant for that RFC section."""
