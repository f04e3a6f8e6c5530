"""``fastsync migrate``: one-way bulk copy of whole mailboxes from one IMAP server to another.

cli (arguments) -> jobs (preflight, copy through the supervisor, verify, exit codes)
-> run (preflight checks and the Collector UI), map (folder mapping), urls (endpoints and
password sources), verify, report; batch reads a CSV of accounts.
"""
