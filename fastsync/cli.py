"""Command line: arguments -> config -> run; exceptions -> exit codes. No sync logic here."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastsync import __version__
from fastsync.errors import ConfigError, ExitCode, FastsyncError

if TYPE_CHECKING:
    from fastsync.config import Config
    from fastsync.ui.base import UI


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told the terminal's width: its own way to find it imports shutil
    (and shutil bz2, lzma...) in every run, help or not."""

    def __init__(self, prog: str) -> None:
        try:
            columns = int(os.environ.get("COLUMNS") or os.get_terminal_size(sys.stdout.fileno()).columns)
        except (AttributeError, ValueError, OSError):  # no terminal, or stdout is not a file
            columns = 80
        super().__init__(prog, width=max(columns - 2, 20))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastsync",
        description="Fast, safe two-way IMAP <-> Maildir / IMAP sync (reads OfflineIMAP configs).",
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "-c", "--config", dest="config", metavar="FILE", help="config file (default ~/.fastsyncrc)"
    )
    p.add_argument("-a", dest="accounts", metavar="ACCOUNTS", help="comma-separated accounts to sync")
    p.add_argument(
        "-f", dest="folders", metavar="FOLDERS", help="comma-separated folders to sync (far names)"
    )
    p.add_argument("-o", dest="once", action="store_true", help="sync once, ignoring autorefresh")
    p.add_argument(
        "-q", dest="quick", action="store_true", help="quick sync: skip folders whose status did not change"
    )
    p.add_argument("--dry-run", action="store_true", help="say what would be done; write nothing")
    p.add_argument(
        "--force-deletes",
        action="store_true",
        help="allow a run to delete more than max_delete_percent of a folder",
    )
    p.add_argument("-u", dest="ui", metavar="UI", help="user interface (e.g. Noninteractive.Basic)")
    p.add_argument("-l", dest="logfile", metavar="LOGFILE", help="write the log to this file")
    p.add_argument(
        "-d",
        dest="debug",
        metavar="TYPES",
        nargs="?",
        const="all",
        help="debug log; 'imap' adds the (password-free) IMAP protocol trace",
    )
    p.add_argument("--version", action="version", version=f"fastsync {__version__}")
    return p


def _setup_logging(debug: str | None, logfile: str | None) -> None:
    handler: logging.Handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    types = set((debug or "").split(","))
    if "imap" not in types:
        logging.getLogger("imapclient").setLevel(logging.WARNING)


def _split(raw: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in raw.split(",") if x.strip()) if raw else ()


def entry() -> int:
    """The ``fastsync`` command: ``main``, then leave with stop requests ignored. The
    interpreter's shutdown puts every signal with a Python handler back to its default; a second
    SIGTERM arriving then would end a clean, committed stop as exit -15 instead of its code."""
    code = main()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["migrate"]:  # the config-free migration subcommand (fastsync.migrate)
        from fastsync.migrate.cli import main as migrate_main

        _setup_logging(None, None)
        try:
            return migrate_main(argv[1:])
        except KeyboardInterrupt:  # before or after the copy (its own stops are handled inside)
            print("fastsync migrate: interrupted", file=sys.stderr)
            return int(ExitCode.INTERRUPTED)
    if argv[:1] in (["worker"], ["batch"]):  # the distributed batch (fastsync.dist, extra [dist])
        from fastsync.dist.cli import batch_main, worker_main

        _setup_logging(None, None)
        run = worker_main if argv[0] == "worker" else batch_main
        return run(argv[1:])
    args = build_parser().parse_args(argv)
    _setup_logging(args.debug, args.logfile)
    try:
        return int(_run(args))
    except ConfigError as e:
        print(f"fastsync: {e}", file=sys.stderr)
        return int(ExitCode.CONFIG)
    except FastsyncError as e:
        print(f"fastsync: {e}", file=sys.stderr)
        return int(ExitCode.ACCOUNT)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)


def _run(args: argparse.Namespace) -> ExitCode:
    from fastsync.config import ImapRepo, default_config_path, load_config
    from fastsync.credentials import get_password, password_needed
    from fastsync.events import Notice
    from fastsync.folders import load_pythonfile
    from fastsync.ui import choose

    config = load_config(Path(args.config).expanduser() if args.config else default_config_path())
    ui = choose(_split(args.ui) if args.ui else config.general.ui)
    accounts = _split(args.accounts) or tuple(config.accounts)
    for name in accounts:
        if name not in config.accounts:
            raise ConfigError(
                f"{config.path}: account {name!r} is not configured "
                f"(expected one of {', '.join(config.accounts)})"
            )
    pyglobals = load_pythonfile(config.general.pythonfile) if config.general.pythonfile else {}
    prompt = ui.ask_password if ui.can_prompt() else None
    passwords: dict[str, str | None] = {}
    runnable = []
    failed = False
    for name in accounts:
        acct = config.accounts[name]
        try:
            for repo in (acct.remote, acct.local):
                if isinstance(repo, ImapRepo) and repo.name not in passwords:
                    needed = password_needed(repo)
                    passwords[repo.name] = get_password(repo, pyglobals, prompt) if needed else None  # type: ignore[arg-type]
            runnable.append(name)
        except ConfigError as e:
            ui.render(Notice(level="error", text=str(e), account=name))
            failed = True
    if runnable and not failed and _nothing_moved(config, tuple(runnable), ui, passwords, pyglobals, args):
        return ExitCode.OK

    # imported only now: a run with nothing to do (above) never needs the supervisor
    from fastsync.supervisor import RunOptions, Supervisor

    opts = RunOptions(
        accounts=tuple(runnable),
        folders=_split(args.folders),
        once=args.once,
        quick=args.quick,
        dry_run=args.dry_run,
        force_deletes=args.force_deletes,
        debug=bool(args.debug),
        logfile=args.logfile,
    )
    code = Supervisor(config, opts, ui, passwords).run() if runnable else ExitCode.OK
    return max(code, ExitCode.ACCOUNT) if failed else code


def _nothing_moved(
    config: Config,
    names: tuple[str, ...],
    ui: UI,
    passwords: dict[str, str | None],
    pyglobals: dict[str, Any],
    args: argparse.Namespace,
) -> bool:
    """The run that finds nothing to do, answered without workers (fastsync.nochange)."""
    from fastsync import nochange

    return nochange.settle(
        config,
        names,
        ui,
        passwords,
        pyglobals,
        folders=_split(args.folders),
        quick=args.quick,
        once=args.once,
        dry_run=args.dry_run,
    )
