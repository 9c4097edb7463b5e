"""The preview in a real headless Chromium (Debian's chromium and chromium-driver, driven by selenium): the page
served by a camera loop reading a video made from val photos (cats, then dogs). Without the token the page is
refused; with it, the stream is drawn (a screenshot that is not blank, whose label region changes from cats to
dogs) and the page's state and event list follow the label.

Skipped with a reason when Chromium, chromedriver or selenium are missing; a failure under CI=true.
CATDOG_SCREENSHOT=docs/door-camera.png also saves the page, once it shows the dogs, for the README.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catdog.edge.camera.frames import SourceConfig
from catdog.edge.camera.loop import WatchConfig
from catdog.edge.camera.overlay import banner_height
from catdog.edge.camera.preview import Preview, describe
from catdog.edge.camera.preview_config import PreviewConfig
from tests.edge.camera.helpers import PATIENCE_S, RUN, legacy_environment, require_opencv, write_video
from tests.edge.camera.preview_helpers import TOKEN, LoopThread, preview_threads

CHROMIUM = Path(os.environ.get("CATDOG_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CATDOG_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1100,700"]


@pytest.fixture
def browser(tmp_path):
    """A fresh headless Chromium (its own profile folder) driven through chromedriver."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (the dev extra)")
    if missing:
        reason = f"a real browser is needed: {', '.join(missing)} not found (apt install chromium chromium-driver)"
        # The legacy environment (make test-legacy) installs no dev extra by design: the browser tests run in the others.
        if os.environ.get("CI") == "true" and not legacy_environment():
            pytest.fail(f"{reason}; CI must install them")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.page_load_strategy = "eager"  # the stream never finishes loading: wait for the document only
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium look for a driver online
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(PATIENCE_S)
    try:
        yield driver
    finally:
        driver.quit()


def _label_region(driver) -> np.ndarray:
    """The label's half of the banner drawn on the stream, as the browser shows it now."""
    from selenium.webdriver.common.by import By

    shot = driver.find_element(By.ID, "stream").screenshot_as_png
    with Image.open(io.BytesIO(shot)) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    return pixels[: banner_height(pixels.shape[0]), : pixels.shape[1] // 2]


@pytest.fixture
def video(confident_frames, tmp_path) -> Path:
    """RUN cat frames then RUN dog frames from val photos, as a video (asked for before the browser, so an
    environment without OpenCV skips before looking for one)."""
    require_opencv()
    return write_video(tmp_path / "cats-then-dogs.avi", [*confident_frames["cat"], *confident_frames["dog"]], fps=25)


def test_the_page_in_chromium_follows_the_camera_and_needs_the_token(video, browser, classifier, camera_model,
                                                                     tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    saves = tmp_path / "snaps"
    preview = Preview(PreviewConfig(host="0.0.0.0", port=0, token=TOKEN),
                      describe(classifier.contract, camera_model, str(video)), save_dir=saves)
    loop = LoopThread(classifier, SourceConfig(str(video)), preview, WatchConfig(smooth=3, save_dir=saves),
                      hold=(RUN + 1, 2 * RUN))
    base = f"http://127.0.0.1:{preview.port}/"
    wait = WebDriverWait(browser, PATIENCE_S, poll_frequency=0.05)
    try:
        browser.get(base)  # listening on every network, without the token: refused
        assert "401" in browser.find_element(By.TAG_NAME, "body").text
        assert browser.find_elements(By.ID, "stream") == []

        assert loop.reached[RUN + 1].wait(PATIENCE_S)  # the cats are on screen; the loop waits at the first dog
        browser.get(base + "?token=" + TOKEN)
        assert browser.current_url == base  # the token went into a cookie, out of the address bar
        wait.until(lambda d: d.find_element(By.ID, "label").text == "cat")
        wait.until(lambda d: d.execute_script("return document.getElementById('stream').naturalWidth") == 320)
        cat = _label_region(browser)
        assert cat.std() > 20, "the label region is blank"  # white text on the dark banner
        assert "cat, dog" in browser.find_element(By.TAG_NAME, "body").text  # the contract's labels

        loop.release(RUN + 1)
        assert loop.reached[2 * RUN].wait(PATIENCE_S)
        wait.until(lambda d: d.find_element(By.ID, "label").text == "dog")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#events li")) == 2)
        wait.until(lambda d: not np.array_equal(_label_region(d), cat))  # the stream redrawn with the dogs' label
        assert _label_region(browser).std() > 20
        snapshots = browser.find_elements(By.CSS_SELECTOR, "#events img")
        assert len(snapshots) == 2
        wait.until(lambda d: all(d.execute_script("return arguments[0].naturalWidth", img) > 0 for img in snapshots))
        wait.until(lambda d: d.find_element(By.ID, "frames").text == str(2 * RUN - 1))  # the state keeps coming
        if os.environ.get("CATDOG_SCREENSHOT"):
            browser.save_screenshot(os.environ["CATDOG_SCREENSHOT"])
        whole = Image.open(io.BytesIO(browser.get_screenshot_as_png()))
        assert len(whole.convert("L").getcolors(1 << 16) or ()) > 50  # the page is drawn, not blank
        loop.release(2 * RUN)
        assert loop.finish().events == 2
    finally:
        loop.finish()
        preview.close()
    assert preview_threads() == [] and not preview.server.failures

