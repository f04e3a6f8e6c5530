"""fastsync: fast, safe IMAP mail synchroniser."""

__version__ = "0.1.0"
