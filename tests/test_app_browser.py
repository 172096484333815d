"""The app in a real browser (headless Chromium via Selenium): type a question, press Answer, read the answer.

Needs Debian's `chromium` and `chromium-driver` (apt-get install -y chromium chromium-driver) and the pip
package `selenium`; skips saying which is missing. The slow test answers with the real SmolLM2 (+ the demo
adapter when `make demo` has trained it) and saves docs/app_screenshot.png for the README.
"""

import os
import shutil
from pathlib import Path

import pytest
from _demo_fakes import ScriptedGenerator, free_port, import_app, is_pot_prompt
from _shared import REPO

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
pytest.importorskip("selenium", reason="selenium is not installed: pip install selenium")

CHROMIUM = Path(os.environ.get("ARITHMO_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("ARITHMO_CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver"))
SHELLS = "Ines has 14 shells and gets 21 more. How many shells does Ines have now?"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"headless Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    if not CHROMEDRIVER.is_file():
        pytest.skip(f"chromedriver not found at {CHROMEDRIVER} (apt-get install -y chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # --no-sandbox: Chromium refuses to run as root otherwise (CI and these machines run as root);
    # --disable-dev-shm-usage: containers give /dev/shm 64 MB, too little for a renderer.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1450", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no calls home


def serve(session, runs_dir):
    ui = import_app().build_ui(session, runs_dir=runs_dir, model_note=getattr(session.generator, "description", ""))
    ui.queue(default_concurrency_limit=1)
    _, url, _ = ui.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True)
    return ui, url


def ask(driver, url: str, question: str, timeout_s: float, style: str | None = None) -> tuple[str, str]:
    """Open the page, type `question`, pick the style whose label is `style` (None: the default, PoT),
    press Answer, wait until the status says the request is over (it ends "N sample(s) in X s." or starts
    with a warning); return (final answer, status)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, timeout_s)
    box = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "#question textarea")))
    box.clear()
    box.send_keys(question)
    if style is not None:
        driver.find_element(By.XPATH, f"//label[contains(., '{style}')]").click()
    driver.find_element(By.CSS_SELECTOR, "#ask").click()
    status = driver.find_element(By.ID, "status")
    wait.until(lambda _: " in " in status.text and "sample" in status.text or "⚠️" in status.text)
    return driver.find_element(By.CSS_SELECTOR, "#final-answer textarea").get_attribute("value"), status.text


def test_a_person_asks_a_question_and_sees_the_answer(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    reply = lambda prompt, use_adapter, seed: ("start = 14\nmore = 21\nprint(start + more)" if is_pot_prompt(prompt)
                                               else "The answer is: 35")
    from arithmo.app.session import DemoSession

    session = DemoSession(ScriptedGenerator(reply))
    ui, url = serve(session, tmp_path)
    try:
        answer, status = ask(browser, url, SHELLS, timeout_s=60)
        assert answer == "35" and "Answer from the program's output." in status
        assert browser.find_element(By.CSS_SELECTOR, "#execution textarea").get_attribute("value") == "35\n"
        assert "print(start + more)" in browser.find_element(By.ID, "program").text
        shot = tmp_path / "app.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        # then the box is emptied and Answer pressed again: the message shows, nothing is generated
        calls = len(session.generator.calls)
        box = browser.find_element(By.CSS_SELECTOR, "#question textarea")
        box.send_keys(Keys.CONTROL, "a")  # as a person does: select all, delete (clear() fires no input event)
        box.send_keys(Keys.DELETE)
        browser.find_element(By.CSS_SELECTOR, "#ask").click()
        status = browser.find_element(By.ID, "status")
        WebDriverWait(browser, 30).until(lambda _: "⚠️" in status.text)
        assert "Please type a question: the question box is empty." in status.text
        assert browser.find_element(By.CSS_SELECTOR, "#final-answer textarea").get_attribute("value") == ""
        assert len(session.generator.calls) == calls
        # chain of thought, chosen with the radio button
        answer, status = ask(browser, url, SHELLS, timeout_s=60, style="Chain of thought (CoT)")
        assert answer == "35" and "Answer from the answer line." in status
        assert "Write a Python program" not in session.generator.calls[-1]["prompt"]
    finally:
        ui.close()
        session.close()


@pytest.mark.slow
def test_screenshot_of_smollm2_answering(browser, tmp_path):
    """The README's screenshot: the real embedded model (and the demo adapter when trained) answers.

    With runs/demo/adapter present (after `make demo`) it overwrites docs/app_screenshot.png; without it the
    base model answers in chain of thought and the picture stays in tmp."""
    from arithmo.app.session import DemoSession
    from arithmo.app.files import load_examples
    from arithmo.app.generator import default_adapter, load_generator

    adapter = default_adapter()
    generator = load_generator(None, adapter)
    session = DemoSession(generator, examples=load_examples()[0])
    ui, url = serve(session, REPO / "runs")
    try:
        # the demo adapter learned programs (PoT, the page's default); the base model alone answers in prose
        style = None if adapter is not None else "Chain of thought (CoT)"
        answer, status = ask(browser, url, SHELLS, timeout_s=240, style=style)
        assert answer and "1 sample in" in status, status
        browser.execute_script("window.scrollTo(0, 0)")
        shot = tmp_path / "app_screenshot.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if adapter is not None:  # the README's picture shows the trained adapter, not the bare model
            (REPO / "docs").mkdir(exist_ok=True)
            shutil.copyfile(shot, REPO / "docs" / "app_screenshot.png")
    finally:
        ui.close()
        session.close()
