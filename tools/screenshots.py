# Screenshots of the web client for the docs: a server in memory with a short chat, the
# page in headless Chromium at desktop and phone width, PNGs under docs/screenshots/.
# Usage: python3 tools/screenshots.py [--out docs/screenshots]
# Rules: loopback only; the server and the browser are stopped at the end, whatever happens.
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import Peer, start_server  # noqa: E402
from tests.web.browser import Browser, missing_reason  # noqa: E402

LINES = [
    ("alice", "hei! has anyone got the history response working with the TA's client?"),
    ("bob", "yes, it replays earlier messages as ordinary messages now"),
    ("alice", "and <b>markup</b> shows as text, good"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    args = parser.parse_args()
    reason = missing_reason()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    server = start_server(web_port=0)
    peers = []
    try:
        for name in ("alice", "bob"):
            peer = Peer(server.address, stream=True)
            peer.login(name)
            peers.append(peer)
        for name, text in LINES:
            peer = peers[0] if name == "alice" else peers[1]
            peer.send("msg", text)
            peer.expect_response("message", content=text)
        host, port = server.web_address
        for label, size in (("desktop", (1280, 760)), ("phone", (390, 844))):
            browser = Browser(*size)
            try:
                driver = browser.driver
                driver.get(f"http://{host}:{port}/")
                browser.wait(lambda d: "connected" in d.find_element("id", "status").text)
                driver.find_element("id", "login-name").send_keys("carol")
                driver.find_element("id", "login-button").click()
                browser.wait(lambda d: len(d.find_elements("css selector", "#messages li")) >= 4)
                browser.wait(lambda d: "bob" in d.find_element("id", "names").text)
                peers[1].send("msg", f"welcome, carol ({label})")
                browser.wait(
                    lambda d: "welcome, carol" in d.find_element("id", "messages").text
                )
                target = out / f"web-client-{label}.png"
                driver.save_screenshot(str(target))
                print(target)
                driver.find_element("id", "logout").click()
                browser.wait(lambda d: d.find_element("id", "login-view").is_displayed())
            finally:
                browser.quit()
    finally:
        for peer in peers:
            peer.close()
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
