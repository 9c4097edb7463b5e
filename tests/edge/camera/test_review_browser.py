"""The review view in a real headless Chromium (Debian's chromium and chromium-driver, driven by selenium): frames the
collector kept from val photos are labelled by clicking a class button and by keyboard shortcuts, one action is
undone, one frame deleted, a new class added and used, and the files are checked on disk after each step.

Skipped with a reason when Chromium, chromedriver or selenium are missing; a failure under CI=true.
CATDOG_SCREENSHOT_REVIEW=docs/review-view.png also saves the view (reduced to 64 colours) for docs/camera.md.
"""

from __future__ import annotations

import os
import time

import pytest
from PIL import Image

from catdog.edge.camera.collect import INBOX, CollectConfig, Collector
from catdog.edge.camera.frames import Frame
from catdog.edge.camera.loop import LoopState
from catdog.edge.camera.preview import Preview, describe
from catdog.edge.camera.preview_config import PreviewConfig
from catdog.edge.camera.review import TRASH, Review
from tests.edge.camera.helpers import PATIENCE_S
from tests.edge.camera.preview_helpers import TOKEN, preview_threads
from tests.edge.camera.test_preview_browser import browser  # noqa: F401 (the fixture)

KEPT = 4  # frames of each label
FOX = "fox-2nd"  # a new class whose name holds shortcut keys


@pytest.fixture
def door(confident_frames, classifier, tmp_path):
    """DIR of --collect after a camera run: KEPT cat and KEPT dog frames in its inbox, each a label event (the
    camera saw cat, dog, cat, ...), written by the real collector."""
    collector = Collector(CollectConfig(tmp_path / "door"), classifier, "rtsp://porch.local/stream")
    pairs = zip(confident_frames["cat"][:KEPT], confident_frames["dog"][:KEPT])
    for index, rgb in enumerate(rgb for pair in pairs for rgb in pair):
        prediction = classifier.classify(rgb)
        collector.observe(Frame(rgb, index, index / 10, time.monotonic()),
                          LoopState(prediction.label, prediction.confidence, index + 1, index + 1, 0, 1.0, prediction))
    assert collector.close().kept == 2 * KEPT
    return tmp_path / "door"


def names_in(folder) -> list[str]:
    return sorted(p.name for p in folder.glob("*.jpg")) if folder.is_dir() else []


def test_frames_are_labelled_in_chromium_by_click_and_key_and_undo_puts_one_back(door, browser, classifier,  # noqa: F811
                                                                                camera_model):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    review = Review(door, classifier.answers)
    preview = Preview(PreviewConfig(host="0.0.0.0", port=0, token=TOKEN),
                      describe(classifier.contract, camera_model, "rtsp://porch.local/stream", classifier.answers),
                      review=review)
    base = f"http://127.0.0.1:{preview.port}/"
    wait = WebDriverWait(browser, PATIENCE_S, poll_frequency=0.05)
    inbox = door / INBOX
    newest = names_in(inbox)[::-1]

    def count_is(n: int) -> None:
        wait.until(lambda d: d.find_element(By.ID, "count").text == str(n))

    def press(key: str) -> None:
        ActionChains(browser).send_keys(key).perform()

    try:
        browser.get(base + "review")  # listening on every network, without the token: refused
        assert "401" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(base + "review?token=" + TOKEN)
        assert browser.current_url == base + "review"  # the token went into a cookie
        count_is(2 * KEPT)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#inbox img")) == 2 * KEPT)
        wait.until(lambda d: d.execute_script("return document.getElementById('frame').naturalWidth") > 0)
        wait.until(lambda d: all(d.execute_script("return arguments[0].naturalWidth", img) > 0
                                 for img in d.find_elements(By.CSS_SELECTOR, "#inbox img")))
        assert newest[0] in browser.find_element(By.ID, "about").text  # the newest frame is the one to label
        if os.environ.get("CATDOG_SCREENSHOT_REVIEW"):
            path = os.environ["CATDOG_SCREENSHOT_REVIEW"]
            browser.save_screenshot(path)
            with Image.open(path) as shot:
                shot.convert("RGB").quantize(64).save(path, optimize=True)

        browser.find_element(By.CSS_SELECTOR, '#classes button[data-class="dog"]').click()  # a click
        count_is(2 * KEPT - 1)
        assert names_in(door / "dog") == [newest[0]] and (door / "dog" / newest[0]).with_suffix(".json").is_file()

        press("1")  # the first class: cat
        count_is(2 * KEPT - 2)
        assert names_in(door / "cat") == [newest[1]]

        press("u")  # undo: the cat goes back to the inbox
        count_is(2 * KEPT - 1)
        assert names_in(door / "cat") == [] and newest[1] in names_in(inbox)
        wait.until(lambda d: newest[1] in d.find_element(By.ID, "about").text)  # and is the one to label again

        press("d")  # delete
        count_is(2 * KEPT - 2)
        assert names_in(door / TRASH) == [newest[1]]

        field = browser.find_element(By.ID, "new-class")
        field.send_keys(FOX, "\n")  # typed in the field, "2", "n" and "d" are letters, not shortcuts
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#classes button[data-class="{FOX}"]'))
        assert (door / FOX).is_dir() and names_in(door / FOX) == []
        count_is(2 * KEPT - 2)
        browser.find_element(By.TAG_NAME, "h1").click()  # focus out of the field
        press("3")  # cat, dog, fox
        count_is(2 * KEPT - 3)
        assert names_in(door / FOX) == [newest[2]]
        assert not (door / TRASH).exists()  # the next action: the delete is final

        press("n")
        count_is(2 * KEPT - 4)
        assert names_in(door / "none") == [newest[3]]
        assert names_in(inbox) == sorted(newest[4:])
        assert names_in(door / "dog") == [newest[0]] and names_in(door / "cat") == []
        assert browser.find_element(By.ID, "message").text == f"{newest[3]} -> none"
    finally:
        preview.close()
    assert preview_threads() == [] and not preview.server.failures
