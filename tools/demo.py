"""`make demo`: a private Dovecot on 127.0.0.1 with a sample mailbox, synced into ./demo/Mail.

Runs the real `fastsync` command twice (first sync, then a no-change re-sync), shows the
Maildir it made, then stops Dovecot. Everything lives under ./demo (delete it to start over).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tools.corpus import DEFAULT_FOLDERS, CorpusSpec, generate
from tools.dovecot import Dovecot, ensure_dovecot

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"


def main() -> int:
    ensure_dovecot()
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir(mode=0o700)
    with Dovecot(DEMO / "dovecot") as server:
        password = secrets.token_urlsafe(12)
        user = server.add_user("demo", password)
        summary = generate(user.maildir, CorpusSpec(folders=list(DEFAULT_FOLDERS), messages=2000, seed=1,
                                                    size_mix="real"))
        print(f"demo: Dovecot on {server.host}:{server.tls_port} (TLS, private CA) with "
              f"{sum(summary.counts.values())} messages in {len(summary.counts)} folders")
        passfile = DEMO / "password"
        passfile.write_text(password + "\n")
        passfile.chmod(0o600)
        config = DEMO / "fastsyncrc"
        config.write_text(
            "[general]\naccounts = Demo\n"
            f"metadata = {DEMO / 'state'}\n\n"
            "[Account Demo]\nlocalrepository = Local\nremoterepository = Remote\n\n"
            f"[Repository Local]\ntype = Maildir\nlocalfolders = {DEMO / 'Mail'}\n\n"
            f"[Repository Remote]\ntype = IMAP\nremotehost = localhost\nremoteport = {server.tls_port}\n"
            f"remoteuser = demo\nremotepassfile = {passfile}\nssl = yes\nsslcacertfile = {server.ca_cert}\n"
            "maxconnections = 2\n"
        )
        config.chmod(0o600)
        cmd = [sys.executable, "-m", "fastsync", "-c", str(config), "-o"]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        for what in ("first sync", "re-sync, nothing changed"):
            print(f"\ndemo: {what}: {' '.join(cmd[1:])}")
            t = time.monotonic()
            rc = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL)
            print(f"demo: exit code {rc}, {time.monotonic() - t:.2f} s wall")
            if rc != 0:
                return rc
        print(f"\ndemo: the Maildir in {DEMO / 'Mail'}:")
        for folder in sorted(p for p in (DEMO / "Mail").iterdir() if p.is_dir()):
            n = sum(1 for sub in ("cur", "new") for _ in (folder / sub).iterdir())
            print(f"  {folder.name:<24} {n:5d} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
