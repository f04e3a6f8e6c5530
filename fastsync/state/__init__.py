"""Per folder pair, what the last sync saw: snapshot + journal files, and the account lock.

``StateFile`` reads and writes one folder pair's state crash-safely; ``apply_record`` is the
only way a ``FolderState`` changes, both live and on journal replay; ``AccountLock`` keeps
two fastsync processes off one account.
"""

from fastsync.state.lock import AccountLock, LockedError
from fastsync.state.pairs import PairTable
from fastsync.state.paths import account_dir, state_path
from fastsync.state.records import (
    FlagsSet,
    FolderState,
    Header,
    JournalRecord,
    Paired,
    Retry,
    Unpaired,
    apply_record,
    header_of,
)
from fastsync.state.statefile import StateCorrupt, StateFile, StateTooNew, part_path

__all__ = [
    "AccountLock",
    "FlagsSet",
    "FolderState",
    "Header",
    "JournalRecord",
    "LockedError",
    "PairTable",
    "Paired",
    "Retry",
    "StateCorrupt",
    "StateFile",
    "StateTooNew",
    "Unpaired",
    "account_dir",
    "apply_record",
    "header_of",
    "part_path",
    "state_path",
]
