"""The Infracast API's own endpoints under ``/api/v1`` (contract §3)."""
