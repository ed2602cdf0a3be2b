#!/usr/bin/env python3
"""Drives the broker's dashboard in a real headless Chromium (Debian's chromium and chromium-driver)
through selenium, for the integration test DashboardBrowserTests and scripts/dashboard-screenshot.sh.

    dashboard_browser.py URL COMMAND_FIFO

It opens URL, then reads one command per line from COMMAND_FIFO and answers each with one line on
stdout, "ok ..." or "fail ...":

    hosts NAME1,NAME2 SECONDS           the hosts table lists exactly these agents
    gateway ID present|absent SECONDS   an element data-gateway=ID exists / does not
    death ID SIGNAL SECONDS             the deaths list has ID with data-signal=SIGNAL
    screenshot PATH                     a PNG of the page
    quit

Each wait polls the page every 50 ms until it holds or SECONDS have passed, and answers with the
seconds it took. Never downloads a driver or a browser: both are Debian's.
"""

import sys
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def make_driver(width=1400, height=1000):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                     f"--window-size={width},{height}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait_for(seconds, check):
    """Polls check() every 50 ms; returns (result, elapsed) with result None on time-out."""
    start = time.monotonic()
    while True:
        try:
            result = check()
        except (StaleElementReferenceException, WebDriverException):
            result = None
        elapsed = time.monotonic() - start
        if result is not None or elapsed > seconds:
            return result, elapsed
        time.sleep(0.05)


def css_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def handle(driver, words):
    command = words[0]
    if command == "hosts":
        wanted = sorted(words[1].split(","))
        def check():
            names = sorted(row.get_attribute("data-host") for row in driver.find_elements(By.CSS_SELECTOR, "#hosts tr[data-host]"))
            return names if names == wanted else None
        found, elapsed = wait_for(float(words[2]), check)
        if found is None:
            names = [row.get_attribute("data-host") for row in driver.find_elements(By.CSS_SELECTOR, "#hosts tr[data-host]")]
            return f"fail hosts {names}"
        return f"ok {elapsed:.3f}"
    if command == "gateway":
        gateway, state, seconds = words[1], words[2], float(words[3])
        selector = f"#gateways [data-gateway={css_string(gateway)}]"
        def check():
            present = len(driver.find_elements(By.CSS_SELECTOR, selector)) > 0
            return True if present == (state == "present") else None
        found, elapsed = wait_for(seconds, check)
        return f"ok {elapsed:.3f}" if found else f"fail {gateway} not {state} after {elapsed:.3f} s"
    if command == "death":
        gateway, signal, seconds = words[1], words[2], float(words[3])
        selector = f"#deaths-list li[data-death-gateway={css_string(gateway)}][data-signal={css_string(signal)}]"
        def check():
            items = driver.find_elements(By.CSS_SELECTOR, selector)
            return items[0].text.replace("\n", " | ") if items else None
        found, elapsed = wait_for(seconds, check)
        return f"ok {elapsed:.3f} {found}" if found else f"fail no death of {gateway} by signal {signal}"
    if command == "screenshot":
        # Let the plots gather a few points first if the page is young.
        time.sleep(0.5)
        driver.save_screenshot(words[1])
        return "ok"
    return f"fail unknown command {command}"


def main():
    url, fifo = sys.argv[1], sys.argv[2]
    driver = make_driver()
    try:
        driver.get(url)
        shown, elapsed = wait_for(10, lambda: True if driver.find_element(By.TAG_NAME, "body").get_attribute("data-updates") else None)
        if not shown:
            print(f"fail the page showed no status within {elapsed:.3f} s", flush=True)
            return
        print(f"ready {elapsed:.3f} {driver.title}", flush=True)
        with open(fifo, "r") as commands:
            for line in commands:
                words = line.split()
                if not words:
                    continue
                if words[0] == "quit":
                    break
                try:
                    answer = handle(driver, words)
                except Exception as error:  # report, do not die: the test reads one line per command
                    answer = f"fail {type(error).__name__}: {error}".replace("\n", " ")
                print(answer, flush=True)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
