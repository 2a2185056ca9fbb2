# The web client in a real browser (headless Chromium) against a real server with its web
# listener on a loopback port: two browser users and one TCP client chat; history after a
# reload; a moderator removes a message and it disappears for everyone; markup shows as
# text; a page of another origin cannot open the WebSocket.
from __future__ import annotations

from typing import Any, Iterator, List

import pytest

from tests.helpers import Peer
from tests.web.browser import Browser, missing_reason

REASON = missing_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"browser tests skipped: {REASON}")
XSS = "<img src=x onerror=alert(1)>"
PASSWORD = "olga-pass-123"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    one = Browser()
    try:
        yield one
    finally:
        one.quit()


@pytest.fixture
def web(server_factory: Any) -> Any:
    return server_factory(web_port=0)


def url(server: Any) -> str:
    host, port = server.web_address
    return f"http://{host}:{port}/"


class Page:
    """One tab of the browser showing the web client."""

    def __init__(self, browser: Browser, address: str, new_tab: bool) -> None:
        self.browser = browser
        driver = browser.driver
        if new_tab:
            driver.switch_to.new_window("tab")
        self.handle = driver.current_window_handle
        driver.get(address)
        browser.wait(lambda d: "connected" in self.text("status"))

    def focus(self) -> None:
        self.browser.driver.switch_to.window(self.handle)

    def el(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.browser.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        return str(self.el(element_id).text)

    def login(self, name: str, password: str = "") -> None:
        self.focus()
        self.el("login-name").clear()
        self.el("login-name").send_keys(name)
        if password:
            self.el("login-password").send_keys(password)
        self.el("login-button").click()
        self.browser.wait(lambda d: self.shows("chat-view") and not self.shows("login-view"))

    def shows(self, element_id: str) -> bool:
        return bool(self.el(element_id).is_displayed())

    def say(self, text: str) -> None:
        self.focus()
        box = self.el("send-text")
        box.send_keys(text)
        box.submit()

    def messages(self) -> List[Any]:
        from selenium.webdriver.common.by import By

        return list(self.browser.driver.find_elements(By.CSS_SELECTOR, "#messages li"))

    def wait_message(self, text: str, earlier: bool = False) -> Any:
        self.focus()

        def found(_: Any) -> Any:
            for li in self.messages():
                classes = li.get_attribute("class") or ""
                if text in li.text and ("earlier" in classes) == earlier:
                    return li
            return False

        return self.browser.wait(found)


def close_extra_tabs(browser: Browser) -> None:
    driver = browser.driver
    handles = driver.window_handles
    for handle in handles[1:]:
        driver.switch_to.window(handle)
        driver.close()
    driver.switch_to.window(handles[0])


def test_browsers_and_a_terminal_chat_moderate_and_see_text_as_text(
    browser: Browser, web: Any
) -> None:
    with Peer(web.address, stream=True) as setup:  # olga's name needs her password
        setup.login("olga")
        setup.send("register", PASSWORD)
        setup.expect(lambda r: r.get("event") == "registered")
    try:
        olga = Page(browser, url(web), new_tab=False)
        olga.login("olga", PASSWORD)
        olga.el("room-name").send_keys("den")
        olga.el("create-room").click()
        browser.wait(lambda d: olga.text("room-title") == "den")
        # The owner is told she may remove messages: the page shows the action buttons.
        browser.wait(lambda d: olga.el("topic-form").is_displayed())

        bob = Page(browser, url(web), new_tab=True)
        bob.login("bob")
        with Peer(web.address, stream=True) as carol:
            carol.login("carol")
            carol.send("join", "den")
            carol.expect(lambda r: r.get("event") == "joined")
            bob.el("room-name").send_keys("den")
            bob.el("room-form").submit()
            browser.wait(lambda d: bob.text("room-title") == "den")
            # bob sees carol (TCP) and olga (browser) in the room's names.
            browser.wait(lambda d: "carol" in bob.text("names") and "olga" in bob.text("names"))
            assert not [b for b in bob.messages() if b.find_elements("css selector", "button")]

            bob.say("hello from a browser")
            carol.expect_response("message", sender="bob", content="hello from a browser")
            olga.wait_message("hello from a browser")
            carol.send("msg", XSS)
            line = bob.wait_message(XSS)
            # Shown as the characters it is: no <img> element was made from it.
            assert line.find_elements("css selector", "img") == []
            assert browser.driver.execute_script("return document.images.length") == 0

            # olga removes carol's line; it disappears in both browsers; carol is told.
            olga.focus()
            target = olga.wait_message(XSS)
            [remove] = [
                b for b in target.find_elements("css selector", "button") if b.text == "remove"
            ]
            remove.click()
            carol.expect(lambda r: r.get("event") == "removed")
            for page in (olga, bob):
                page.focus()
                browser.wait(lambda d, page=page: not any(
                    XSS in li.text and li.is_displayed() for li in page.messages()
                ))
    finally:
        close_extra_tabs(browser)


def test_only_the_login_form_shows_until_the_server_says_welcome(
    browser: Browser, web: Any
) -> None:
    try:
        page = Page(browser, url(web), new_tab=False)
        assert page.el("login-view").is_displayed()
        # Hidden by its `hidden` attribute, whatever the style sheet says of its element.
        assert not page.el("chat-view").is_displayed()
        assert not page.el("room-name").is_displayed()
        page.login("hanna")
        assert not page.el("login-view").is_displayed()
        assert page.el("room-name").is_displayed()
    finally:
        close_extra_tabs(browser)


def test_history_after_reload(browser: Browser, web: Any) -> None:
    try:
        page = Page(browser, url(web), new_tab=False)
        page.login("dora")
        page.say("remember me")
        page.wait_message("remember me")
        browser.driver.refresh()
        browser.wait(lambda d: "connected" in page.text("status"))
        page.login("dora")
        line = page.wait_message("remember me", earlier=True)
        stamp = line.find_element("css selector", ".time").text
        assert len(stamp) == len("2017-03-10 12:34:56") and stamp[4] == "-"
    finally:
        close_extra_tabs(browser)


def test_the_client_reconnects_by_itself(browser: Browser, server_factory: Any) -> None:
    web = server_factory(web_port=0)
    try:
        page = Page(browser, url(web), new_tab=False)
        page.login("erik")
        with Peer(web.address, stream=True) as admin:
            admin.login("watcher")
            # Drop every web connection from the server side; the page must come back.
            for loop in web.loops:
                for conn in list(loop.connections):
                    if conn.transport == "websocket":
                        loop.post(lambda conn=conn, loop=loop: loop.close(conn, "test drop"))
            browser.wait(lambda d: "reconnect" in page.text("status").lower())
            browser.wait(lambda d: page.text("status") == "reconnected")
            admin.expect(lambda r: r.get("event") == "join" and r.get("username") == "erik")
    finally:
        close_extra_tabs(browser)


def test_a_page_of_another_origin_cannot_open_the_websocket(browser: Browser, web: Any) -> None:
    host, port = web.web_address
    driver = browser.driver
    driver.get("about:blank")  # an opaque origin: the browser sends Origin: null
    outcome = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const ws = new WebSocket(arguments[0]);
        ws.onopen = () => done("open");
        ws.onerror = () => done("refused");
        """,
        f"ws://{host}:{port}/ws",
    )
    assert outcome == "refused"
