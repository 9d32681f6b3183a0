"""scripts/quake_status.py, the Quake demo's status poller, against a stand-in server (no game,
no root): it parses ioquake3's statusResponse (server cvars, players with scores, names with
spaces and quotes), matches each answer to its query by the echoed challenge, and spreads its
queries round-robin over every --source address (ioquake3 rate-limits status per address).
"""

import json
import socket
import subprocess
import sys
import threading

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import quake_status  # noqa: E402

RESPONSE = (b"\xff\xff\xff\xffstatusResponse\n\\challenge\\%s\\sv_hostname\\cryo\\mapname\\oa_dm1"
            b"\\g_timestamp\\2026-12-04 08:58:58\n3 0 \"Sarge\"\n-1 12 \"Major Tom\"\n")


def test_parse_reads_cvars_and_players():
    info, players = quake_status.parse(RESPONSE % b"7")
    assert info == {"challenge": "7", "sv_hostname": "cryo", "mapname": "oa_dm1", "g_timestamp": "2026-12-04 08:58:58"}
    assert players == [[3, 0, "Sarge"], [-1, 12, "Major Tom"]]
    assert quake_status.parse(b"\xff\xff\xff\xffinfoResponse\n\\a\\b") is None


def test_poller_answers_round_robin_over_sources():
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(10)
    port = srv.getsockname()[1]
    seen = []

    def serve():
        while len(seen) < 12:
            try:
                data, addr = srv.recvfrom(1000)
            except OSError:
                return
            assert data.startswith(b"\xff\xff\xff\xffgetstatus ")
            seen.append(addr[0])
            srv.sendto(RESPONSE % data.split()[-1], addr)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    p = subprocess.Popen([sys.executable, str(REPO / "scripts" / "quake_status.py"), "127.0.0.1", "--port", str(port),
                          "--interval", "0.02", *[x for s in sources for x in ("--source", s)]],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        answers = [json.loads(p.stdout.readline()) for _ in range(6)]
    finally:
        p.stdin.close()
        p.wait(timeout=10)
        srv.close()
    assert p.returncode == 0
    assert seen[:6] == sources * 2, seen
    assert [a["seq"] for a in answers] == list(range(6))
    assert all(a["rtt_ms"] is not None and a["rtt_ms"] >= 0 for a in answers)
    assert answers[0]["info"]["mapname"] == "oa_dm1" and answers[0]["players"][1] == [-1, 12, "Major Tom"]
