"""The Cyrus and Courier launchers themselves: they start beside the session Dovecot, log
to their own files, refuse to start loudly (with the server's own words), and leave no
process behind."""

from __future__ import annotations

import shutil

import psutil
import pytest

from tools.courier import Courier
from tools.cyrus import Cyrus
from tools.dovecot import Dovecot
from tools.mailserver import make_base_dir

pytestmark = [pytest.mark.cyrus, pytest.mark.courier]


def processes_under(base: str) -> list[int]:
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(base in arg for arg in proc.info["cmdline"] or ()):
            out.append(proc.pid)
    return out


def test_cyrus_that_cannot_start_fails_with_its_own_log_and_leaves_nothing_running() -> None:
    base = make_base_dir("fastsync-cyrus-bad-")
    try:
        server = Cyrus(base, extra_config="admins: twice\n")  # Cyrus refuses a repeated option
        with pytest.raises(RuntimeError) as failed:
            server.start()
        text = str(failed.value)
        assert "failed to start" in text and "admins" in text and "specified" in text, text
        assert processes_under(str(base)) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("kind", ["cyrus", "courier"])
def test_server_runs_beside_dovecot_logs_logins_to_its_own_file_and_stops_clean(
    kind: str, dovecot: Dovecot
) -> None:
    base = make_base_dir(f"fastsync-{kind}-own-")
    server: Cyrus | Courier = Cyrus(base) if kind == "cyrus" else Courier(base)
    try:
        server.start()
        assert server.port != dovecot.port
        user = server.add_user("loginwatch", "pw-1")
        user.connect().logout()
        with pytest.raises(Exception, match=r"(?i)fail|auth"):
            server.connect("loginwatch", "wrong")
        dovecot_user = dovecot.add_user(f"beside-{kind}", "pw")
        dovecot_user.connect().logout()  # the system's Dovecot package is untouched, still serving
        server.stop()
        assert "loginwatch" in server.log_tail()
        assert processes_under(str(base)) == []
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
