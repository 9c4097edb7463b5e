"""The review view's "Retrain" button in a real headless Chromium (edge.camera.retrain through page.py's review
script): a click learns from the labelled photos of the collect folder, the status line follows the run until it
says which model the camera now runs, and the switch holds the new model for the loop.

Skipped with a reason when Chromium, chromedriver or selenium are missing; a failure under CI=true."""

from __future__ import annotations

from catdog.edge.camera.preview import Preview
from catdog.edge.camera.preview_config import PreviewConfig
from catdog.edge.camera.review import Review
from catdog.edge.camera.swap import ModelOptions, ModelSwitch
from catdog.edge.classify import Classifier
from tests.edge.camera.helpers import PATIENCE_S
from tests.edge.camera.preview_helpers import TOKEN, preview_threads
from tests.edge.camera.test_preview_browser import browser  # noqa: F401 (the fixture)
from tests.photo_trees import three_class_tree


def test_the_retrain_button_learns_and_says_which_model_runs_now(browser, bundled_model, data_dir,  # noqa: F811
                                                                 tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    collect = three_class_tree(data_dir, tmp_path / "collect", 4, "val")
    switch = ModelSwitch(Classifier.load(bundled_model), ModelOptions(path=bundled_model))
    wait = WebDriverWait(browser, PATIENCE_S, poll_frequency=0.05)

    def status() -> str:
        return browser.find_element(By.ID, "retrain-status").text

    with Preview(PreviewConfig(port=0, token=TOKEN), {"labels": ["cat", "dog"]},
                 review=Review(collect, ("cat", "dog")), switch=switch) as preview:
        browser.get(f"http://127.0.0.1:{preview.port}/review?token={TOKEN}")  # the token moves into a cookie
        button = wait.until(lambda d: d.find_element(By.ID, "retrain") if d.find_element(By.ID, "retrain-box")
                            .is_displayed() else None)  # shown once the state says this camera can retrain
        button.click()
        wait.until(lambda d: status().startswith(("done", "failed")))
        assert status().startswith("done: now learned-") and status().endswith("(labels cat, dog, mono)"), status()
        assert not button.get_attribute("disabled")
        taken = switch.take()  # what the loop does before its next frame
        assert taken is not None and taken.contract.labels == ("cat", "dog", "mono")
    assert preview_threads() == [] and not preview.server.failures
