"""The preview's "Reload model" button in a real headless Chromium (edge.camera.swap through page.py's script): a
click reads the --model file again and says what was loaded; the model section follows the model the loop takes;
a damaged file is refused with why, and the page keeps showing the running model.

Skipped with a reason when Chromium, chromedriver or selenium are missing; a failure under CI=true."""

from __future__ import annotations

from pathlib import Path

from catdog.edge.camera.preview import Preview
from catdog.edge.camera.preview_config import PreviewConfig
from catdog.edge.camera.swap import ModelOptions, ModelSwitch
from catdog.edge.classify import Classifier
from tests.conftest import copy_model_with_contract
from tests.edge.camera.helpers import PATIENCE_S
from tests.edge.camera.preview_helpers import TOKEN, preview_threads
from tests.edge.camera.test_preview_browser import browser  # noqa: F401 (the fixture)


def test_the_reload_button_switches_the_model_and_reports_a_damaged_file(browser, camera_model,  # noqa: F811
                                                                         tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    path = tmp_path / "model.tflite"
    path.write_bytes(Path(camera_model).read_bytes())
    switch = ModelSwitch(Classifier.load(path), ModelOptions(path=path))
    wait = WebDriverWait(browser, PATIENCE_S, poll_frequency=0.05)

    def text(element_id: str) -> str:
        return browser.find_element(By.ID, element_id).text

    with Preview(PreviewConfig(port=0, token=TOKEN), {"labels": ["cat", "dog"], "model": path.name},
                 switch=switch) as preview:
        browser.get(f"http://127.0.0.1:{preview.port}/?token={TOKEN}")  # the token moves into a cookie
        wait.until(lambda d: text("model-since") != "-")  # the state arrived
        assert text("model-labels") == "cat, dog" and text("model-file") == "model.tflite"
        copy_model_with_contract(path, tmp_path / "staged.tflite", {"labels": ["kitty", "puppy"]}, sidecar=False)
        (tmp_path / "staged.tflite").replace(path)
        browser.find_element(By.ID, "reload").click()
        wait.until(lambda d: "loaded" in text("reload-result"))
        assert "kitty, puppy" in text("reload-result")
        assert switch.take() is not None  # the loop takes it before its next frame
        wait.until(lambda d: text("model-labels") == "kitty, puppy")
        path.write_bytes(path.read_bytes()[:5000])
        browser.find_element(By.ID, "reload").click()
        wait.until(lambda d: "old one keeps running" in text("reload-result"))
        assert switch.take() is None and text("model-labels") == "kitty, puppy"
        assert not browser.find_element(By.ID, "reload").get_attribute("disabled")
    assert preview_threads() == [] and not preview.server.failures
