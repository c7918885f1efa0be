"""A person in the Argilla UI: headless Chromium (Debian's ``chromium`` and ``chromedriver``,
which ``./dev`` installs) signs in as the annotator, opens the queue, sees the record with
the model's suggestion, picks another label and submits it; the answer then arrives on the
``labels`` topic through the API's webhook receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loop.messages import Candidate, LabelEvent, decode
from stack.argilla import LocalArgilla
from tests.integration.argilla.test_loop import Loop
from tests.integration.browser import chromium, needs_chromium
from tests.integration.conftest import Env, WorkerProcess, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs_chromium]

TEXT = "Tesla shares jump after record deliveries 🚀"


@pytest.fixture
def ui_loop(env: Env, argilla: LocalArgilla, tmp_path: Path) -> Iterator[Loop]:
    made = Loop(env, argilla, tmp_path)
    yield made
    made.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with chromium(tmp_path / "chromium") as driver:
        yield driver


def test_an_annotator_labels_in_the_argilla_ui_and_the_label_reaches_the_topic(
    ui_loop: Loop,
    argilla: LocalArgilla,
    workers: Callable[..., WorkerProcess],
    browser: object,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    loop = ui_loop
    api = workers(["api"], "api", **loop.vars).start()
    api.wait_for("Application startup complete", timeout=120)
    labeler = workers(["worker", "labeler", "--no-vectors"], "labeler", **loop.vars).start()
    labeler.wait_for("assigned partitions", timeout=180)
    loop.send(
        [
            Candidate(
                id="ui-1",
                text=TEXT,
                model_version="v0001",
                strategy="breaking-ties",
                score=0.7,
                reason="uncertain",
                probabilities={"Bearish": 0.1, "Bullish": 0.3, "Neutral": 0.6},
            )
        ]
    )
    loop.wait_records(1)
    dataset = loop.dataset_id()

    wait = WebDriverWait(browser, 60)
    credentials = argilla.credentials
    browser.get(f"{argilla.url}/sign-in")
    wait.until(shown.visibility_of_element_located((By.NAME, "Username"))).send_keys(
        credentials.annotator
    )
    browser.find_element(By.NAME, "Password").send_keys(credentials.annotator_password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda driver: "/sign-in" not in driver.current_url)

    browser.get(f"{argilla.url}/dataset/{dataset}/annotation-mode")
    wait.until(shown.visibility_of_element_located((By.XPATH, f"//*[contains(text(), '{TEXT}')]")))
    # The model's suggestion is marked on its label, with its score.
    suggested = wait.until(
        shown.visibility_of_element_located(
            (By.CSS_SELECTOR, "label[for='label_Neutral'] .label-text__suggestion")
        )
    )
    assert "0.6" in suggested.text
    assert not browser.find_elements(
        By.CSS_SELECTOR, "label[for='label_Bullish'] .label-text__suggestion"
    )
    # The person disagrees with the model: Bullish, then Submit.
    browser.find_element(By.CSS_SELECTOR, "label[for='label_Bullish']").click()
    submit = browser.find_element(By.CSS_SELECTOR, "button.button--submit")
    wait.until(lambda _: submit.is_enabled())
    submit.click()

    def answers(found: list[Any]) -> list[LabelEvent]:
        return [e for e in (decode(r.value, LabelEvent) for r in found) if e.id == "ui-1"]

    # The webhook names the annotator; the labeler's catch-up poll may relay the same answer
    # too (by user id), which the label store would ignore.
    events = answers(
        read_topic(
            loop.env.broker,
            f"{loop.env.prefix}.labels",
            lambda found: any(e.annotator == "annotator" for e in answers(found)),
            timeout=120,
        )
    )
    assert events, "no label event for the record"
    assert {(e.label, e.status, e.response_id) for e in events} == {
        ("Bullish", "submitted", events[0].response_id)
    }
    webhook = next(e for e in events if e.annotator == "annotator")
    assert (webhook.origin, webhook.model_version, webhook.text) == ("uncertain", "v0001", TEXT)
