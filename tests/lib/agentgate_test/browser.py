"""A headless Chromium (Debian's chromium and chromium-driver, driven by
python3-selenium) pointed at the session stack's console: signing in,
waiting on the page with JavaScript conditions, the browser's own network
log (Chrome DevTools Network events) to count the requests it made, its
console messages, and screenshots.

Screenshots go to AGENTGATE_SCREENSHOT_DIR, else <repo>/build/console-screenshots
(CI keeps that folder as an artifact)."""

import json
import os
import shutil
import time

from agentgate_test.paths import REPO
from agentgate_test.ports import HTTP_PORT
from agentgate_test.waiting import TIMEOUT

CHROMIUM = os.environ.get("AGENTGATE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AGENTGATE_CHROMEDRIVER", "/usr/bin/chromedriver")
CONSOLE_URL = f"http://127.0.0.1:{HTTP_PORT}/console/"
WINDOW = (1400, 1000)


def screenshot_dir():
    return os.path.abspath(os.environ.get("AGENTGATE_SCREENSHOT_DIR")
                           or os.path.join(REPO, "build", "console-screenshots"))


def missing():
    """Why no browser can run here (what to install), or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "python3-selenium is not installed (deploy/local/install-deps installs it)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.access(path, os.X_OK) or shutil.which(path)):
            return f"{path} is missing: install chromium and chromium-driver (deploy/local/install-deps)"
    return None


class Browser:
    """One headless Chromium session."""

    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                  "--disable-gpu", "--no-proxy-server", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                  "--disable-extensions", "--no-first-run", "--lang=en-US"):
            opts.add_argument(a)
        # The DevTools Network events (every request the page makes, event
        # streams included) and the page's console messages.
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_script_timeout(TIMEOUT)
        self._network = []
        self._console = []

    def quit(self):
        self.driver.quit()

    # -- the page ------------------------------------------------------------

    def open(self, fragment="#/jobs"):
        """Goes to the console at fragment ("#/jobs/ID"); a change of the
        fragment alone is a hash navigation, as a user's click would be."""
        d = self.driver
        if d.current_url.startswith(CONSOLE_URL):
            d.execute_script("location.hash = arguments[0]", fragment)
        else:
            d.get(CONSOLE_URL + fragment)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, script, *args, timeout=TIMEOUT, what=None):
        """Polls the JavaScript expression body script (it should `return`
        something) until it returns something true; returns that."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.js(script, *args)
            except Exception as e:  # the page is between documents
                last = e
            else:
                if last:
                    return last
            time.sleep(0.1)
        raise AssertionError(f"browser: {what or script} not true within {timeout:.0f} s "
                             f"(last: {last!r}); page at {self.driver.current_url}; text:\n"
                             + self.text()[:2000])

    def text(self):
        try:
            return self.js("return document.body ? document.body.innerText : ''")
        except Exception as e:
            return f"(no text: {e})"

    def click(self, css):
        self.wait("const e = document.querySelector(arguments[0]); return e && !e.disabled",
                  css, what=f"{css} clickable")
        self.driver.find_element("css selector", css).click()

    def select(self, css, value):
        """Picks value in the <select> at css, as a user would (change event)."""
        from selenium.webdriver.support.ui import Select
        self.wait("const s = document.querySelector(arguments[0]); return s && "
                  "[...s.options].some(o => o.value === arguments[1])", css, value,
                  what=f"option {value!r} in {css}")
        Select(self.driver.find_element("css selector", css)).select_by_value(value)

    def sign_in(self, token):
        """Signs in on the sign-in page with token and waits for the jobs page."""
        self.driver.get(CONSOLE_URL + "#/signin")
        self.js("sessionStorage.clear()")
        self.driver.get(CONSOLE_URL + "#/signin")
        self.wait("return document.querySelector('#token')", what="the sign-in form")
        # Set as pasted: typing 300 characters key by key adds nothing.
        self.js("document.querySelector('#token').value = arguments[0]", token)
        self.click("#signin")
        self.wait("return location.hash.startsWith('#/jobs') && document.querySelector('#jobs-list') "
                  "&& !document.querySelector('#jobs-list .loading')", what="the jobs page after sign-in")

    def screenshot(self, name):
        d = screenshot_dir()
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, name + ".png")
        # The page as it stands, without the passing notices ("Signed in"),
        # and whole: the window grows to the page's height for the picture.
        self.js("const t = document.getElementById('toasts'); if (t) t.replaceChildren()")
        height = self.js("return document.documentElement.scrollHeight") or WINDOW[1]
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": WINDOW[0], "height": min(max(WINDOW[1], height), 4000),
            "deviceScaleFactor": 1, "mobile": False})
        try:
            self.driver.save_screenshot(path)
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return path

    # -- what the browser did ------------------------------------------------

    def _drain(self):
        for entry in self.driver.get_log("performance"):
            try:
                self._network.append(json.loads(entry["message"])["message"])
            except (KeyError, ValueError):
                pass
        for entry in self.driver.get_log("browser"):
            self._console.append(entry)

    def reset_logs(self):
        self._drain()
        self._network = []
        self._console = []

    def requests(self, url_part):
        """The requests the page sent whose URL contains url_part, in order:
        [{"id", "url", "type", "status"}] (status None until answered)."""
        self._drain()
        out, by_id = [], {}
        for m in self._network:
            p = m.get("params", {})
            if m.get("method") == "Network.requestWillBeSent" and url_part in p.get("request", {}).get("url", ""):
                r = {"id": p.get("requestId"), "url": p["request"]["url"], "type": p.get("type"),
                     "status": None}
                out.append(r)
                by_id[r["id"]] = r
            elif m.get("method") == "Network.responseReceived" and p.get("requestId") in by_id:
                by_id[p["requestId"]]["status"] = p.get("response", {}).get("status")
        return out

    def console_messages(self):
        """The page's console messages so far (level, message)."""
        self._drain()
        return [(e.get("level"), e.get("message", "")) for e in self._console]

    def csp_violations(self):
        return [m for _, m in self.console_messages()
                if "Content Security Policy" in m or "Refused to" in m]
