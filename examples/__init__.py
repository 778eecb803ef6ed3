"""Runnable examples of services that use Infracast Identity."""
