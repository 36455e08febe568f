"""`ganzoo view` in a real browser (headless Chromium, tests/view/browser.py): the page loads clean, the seed moves the
grid and back exactly, a conditional model's class picker draws that class, the walk's ends are the two samples,
a run training in the background shows new points within seconds, a corrupt file is a row with its sentence,
the download is `ganzoo sample`'s PNG, and nothing is written outside the run folders.

One view serves the module, over a folder of tiny runs; the MNIST cdcgan (minutes of training, for the class
picker alone) joins the folder while the view runs, as a new run would. Screenshots of every tab land in the
test's temporary folder (view-shots/).
"""

import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from selenium.webdriver.common.by import By

from browser import ViewServer, chromium, decode, free_port, tab, wait_for
from helpers import MNIST_DIR
from ganzoo.checkpoint import read_tensors
from ganzoo.cli import main
from ganzoo.errors import GanzooError

pytestmark = pytest.mark.slow          # a server process, a browser and minutes of MNIST training

TINY = ["--data", "fake", "--batch-size", "32", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
        "--log-every", "4", "--device", "cpu", "--threads", "1"]

# The conditional model for the class picker: the smallest and shortest cdcgan found whose 7s the evaluator reads
# as 7 at least 90% of the time (16 wide, 3 epochs: 0.92 on seed 0's 256 samples; 2 epochs gave 0.84-0.90).
# Deterministic (epochs, one thread, the default seed), so the suite draws the same 7s on every run.
CDCGAN = ["--data", "mnist", "--g-width", "16", "--d-width", "16", "--batch-size", "64", "--epochs", "3",
          "--threads", "1", "--ema", "0.99", "--samples", "20", "--log-every", "50", "--device", "cpu"]


@pytest.fixture(scope="session")
def mnist_cdcgan(tmp_path_factory):
    """A conditional DCGAN trained on real MNIST, small and short (2,811 steps on one thread, 2 to 5 minutes)."""
    out = tmp_path_factory.mktemp("cdcgan") / "cdcgan-mnist"
    before = torch.get_num_threads()
    try:
        assert main(["run", "cdcgan", *CDCGAN, "--data-dir", str(MNIST_DIR), "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    return out


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    runs = root / "runs"
    before = torch.get_num_threads()
    try:
        assert main(["run", "dcgan", *TINY, "--epochs", "2", "--ema", "0.9", "--out", str(runs / "dcgan")]) == 0
    finally:
        torch.set_num_threads(before)
    (runs / "corrupt.safetensors").write_bytes((runs / "dcgan" / "dcgan.safetensors").read_bytes()[:300])
    return root


@pytest.fixture(scope="module")
def view(zoo, tmp_path_factory):
    sandbox = tmp_path_factory.mktemp("sandbox")
    server = ViewServer([zoo / "runs"], sandbox, free_port(), sandbox / "view.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(view, browser):
    browser.get(view.url)
    wait_for(lambda: cells(browser), 120, "the first grid")
    return browser


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("view-shots")
    print(f"screenshots: {folder}")
    return folder


# -- helpers ------------------------------------------------------------------------------------------

def cells(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#grid img.cell')].map(i => i.src)")


def cell_titles(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#grid img.cell')].map(i => i.title)")


def set_number(driver, elem_id: str, value) -> None:
    """Type a value into a gradio slider's or number's box and press Enter, as a user does."""
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=number]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.ENTER)


def click_radio(driver, elem_id: str, label: str) -> None:
    driver.find_element(By.XPATH, f"//*[@id='{elem_id}']//label[normalize-space(.)='{label}']").click()


def open_run(driver, key: str) -> None:
    """Click the entry's row in the Runs tab, then go to the Sample tab and wait for its grid."""
    tab(driver, "Runs")
    row = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, f"tr[data-key='{key}']"), 30, f"the row of {key}")
    row[0].click()
    tab(driver, "Sample")
    wait_for(lambda: any(f"from {key} (" in e.text for e in driver.find_elements(By.CSS_SELECTOR, "#grid-note")),
             60, f"the grid of {key}")


def errors_in_console(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


# -- the tests ----------------------------------------------------------------------------------------

def test_the_page_loads_clean(view, tmp_path):
    """A fresh browser: the page, its first grid and every tab, without one error in the console."""
    assert view.url.startswith("http://127.0.0.1:")                        # local only, as printed
    fresh = chromium(tmp_path / "chromium")
    try:
        fresh.get(view.url)
        wait_for(lambda: cells(fresh), 120, "the first grid")
        for name in ("Runs", "Sample", "Latent walk", "Training", "Compare"):
            tab(fresh, name)
            time.sleep(1.5)
        assert errors_in_console(fresh) == []
    finally:
        fresh.quit()


def test_the_seed_moves_the_grid_and_back_exactly(view, page, shots):
    open_run(page, f"{view.paths[0]}/dcgan")
    set_number(page, "seed", 0)
    wait_for(lambda: "seed 0 " in cell_titles(page)[0] + " ", 30, "seed 0's grid")
    first = cells(page)
    shot = page.find_element(By.CSS_SELECTOR, "#grid .ganzoo-grid").screenshot_as_png
    set_number(page, "seed", 5)
    wait_for(lambda: cells(page) != first, 30, "the grid to change")
    moved = cells(page)
    assert len(moved) == len(first) == 64
    assert all(not np.array_equal(decode(a), decode(b)) for a, b in zip(first, moved))   # every sample differs
    assert page.find_element(By.CSS_SELECTOR, "#grid .ganzoo-grid").screenshot_as_png != shot
    set_number(page, "seed", 0)
    wait_for(lambda: cells(page) != moved, 30, "the grid to change back")
    assert cells(page) == first                                             # the very same pixels
    assert page.find_element(By.CSS_SELECTOR, "#grid .ganzoo-grid").screenshot_as_png == shot


def test_the_download_is_the_png_ganzoo_sample_writes(view, page, tmp_path):
    open_run(page, f"{view.paths[0]}/dcgan")
    set_number(page, "seed", 3)
    wait_for(lambda: "seed 3" in cell_titles(page)[0], 30, "seed 3's grid")
    page.find_element(By.CSS_SELECTOR, "#grid button.ganzoo-download").click()
    downloaded = wait_for(lambda: list(page.downloads.glob("dcgan-seed3-n64.png")), 30, "the download")[0]
    assert main(["sample", str(view.paths[0] / "dcgan"), "--seed", "3", "-n", "64", "--out",
                 str(tmp_path / "s.png"), "--device", "cpu"]) == 0
    assert downloaded.read_bytes() == (tmp_path / "s.png").read_bytes()


def test_the_class_picker_draws_sevens(view, page, mnist_cdcgan, shots):
    from ganzoo_plugins.mnist_evaluator import load_evaluator

    shutil.copytree(mnist_cdcgan, view.paths[0] / "cdcgan-mnist")      # a run the view has not seen yet
    open_run(page, f"{view.paths[0]}/cdcgan-mnist")
    set_number(page, "seed", 0)
    set_number(page, "count", 256)                                  # many samples: a share, not a few lucky ones
    click_radio(page, "class", "7")
    wait_for(lambda: len(cell_titles(page)) == 256 and all(t.endswith("seed 0, class 7") for t in cell_titles(page)),
             60, "a grid of 256 7s")
    images = torch.from_numpy(np.stack([decode(uri) for uri in cells(page)]))[:, None]     # [256, 1, 32, 32] uint8
    _, probs = load_evaluator().score(images)
    read = probs.argmax(1)
    page.save_screenshot(str(shots / "sample-class-7.png"))
    assert (read == 7).double().mean() >= 0.9, f"the evaluator read {read.tolist()}"
    click_radio(page, "class", "every class")
    set_number(page, "count", 64)


def test_the_walk_ends_are_the_two_clicked_samples(view, page, shots):
    open_run(page, f"{view.paths[0]}/dcgan")
    picked = {}
    for seed, target, index in ((2, "walk start A", 3), (9, "walk end B", 0)):
        set_number(page, "seed", seed)
        wait_for(lambda: f"seed {seed}" in cell_titles(page)[0], 30, f"seed {seed}'s grid")
        click_radio(page, "target", target)
        page.find_elements(By.CSS_SELECTOR, "#grid img.cell")[index].click()     # picks sample `index` of `seed`
        picked[target] = cells(page)[index]
    tab(page, "Latent walk")

    def point(t):
        set_number(page, "walk-t", t)
        return wait_for(lambda: page.execute_script(
            f"const i = document.querySelector('#walk-point img[data-t=\"{t:g}\"]'); return i && i.src"), 30,
            f"the walk at t={t}")

    wait_for(lambda: "A: sample 3 of seed 2" in page.find_element(By.ID, "walk-a").text
             and "B: sample 0 of seed 9" in page.find_element(By.ID, "walk-b").text, 30, "the walk's clicked ends")
    assert np.array_equal(decode(point(0)), decode(picked["walk start A"]))
    assert np.array_equal(decode(point(1)), decode(picked["walk end B"]))
    middle = decode(point(0.5))
    assert all(not np.array_equal(middle, decode(end)) for end in picked.values())
    page.save_screenshot(str(shots / "latent-walk-ends.png"))
    tab(page, "Sample")                                             # arithmetic: clicked samples fill the groups
    for target, indices in (("group A", (1, 4)), ("group B", (2,)), ("group C", (5, 6))):
        click_radio(page, "target", target)
        for i in indices:
            page.find_elements(By.CSS_SELECTOR, "#grid img.cell")[i].click()
            time.sleep(0.5)
    click_radio(page, "target", "walk start A")
    tab(page, "Latent walk")
    groups = [page.find_element(By.CSS_SELECTOR, f"#group-{g} textarea, #group-{g} input").get_attribute("value")
              for g in "abc"]
    assert groups == ["1,4", "2", "5,6"]
    page.find_element(By.ID, "arithmetic-go").click()
    wait_for(lambda: page.find_elements(By.CSS_SELECTOR, "#arithmetic img.arithmetic"), 30, "the arithmetic")


def test_a_training_run_shows_new_points_within_seconds(view, page, shots, zoo):
    live = zoo / "runs" / "live"
    run = subprocess.Popen([sys.executable, "-m", "ganzoo", "run", "dcgan", *TINY, "--epochs", "400",
                            "--log-every", "2", "--out", str(live)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        tab(page, "Runs")
        wait_for(lambda: page.find_elements(By.CSS_SELECTOR, f"tr[data-key='{live}'][data-status='training']"), 120,
                 "the training run's row")
        wait_for(lambda: (live / "metrics.jsonl").is_file(), 60, "the run's first log records")
        open_run(page, str(live))
        tab(page, "Training")

        def points():
            return page.execute_script("const i = document.querySelector('#curves img.curves');"
                                       "return i ? Number(i.dataset.points) : 0")

        seen = wait_for(points, 30, "the first curve")
        start = time.monotonic()
        wait_for(lambda: points() > seen, 10, "new points on the curve")
        print(f"new points after {time.monotonic() - start:.1f} s")
        page.save_screenshot(str(shots / "training-live.png"))
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(60)
    tab(page, "Sample")


def test_a_corrupt_file_is_a_row_with_its_sentence(view, page):
    corrupt = view.paths[0] / "corrupt.safetensors"
    with pytest.raises(GanzooError) as caught:
        read_tensors(corrupt)
    tab(page, "Runs")
    row = page.find_element(By.CSS_SELECTOR, f"tr[data-key='{corrupt}']")
    assert row.get_attribute("data-status") == "error" and str(caught.value) in row.text
    row.click()                                                     # opened: the sentence, and the page goes on
    tab(page, "Sample")
    wait_for(lambda: str(caught.value) in page.find_element(By.ID, "grid").text, 30, "the error in place of a grid")
    open_run(page, f"{view.paths[0]}/dcgan")
    assert len(cells(page)) == 64 and errors_in_console(page) == []


def test_screenshots_of_every_tab(view, page, shots):
    """A fresh page over everything the folder now holds (the first run opened, two side by side in Compare)."""
    page.get(view.url)
    wait_for(lambda: cells(page), 60, "the first grid")
    for name in ("Runs", "Sample", "Latent walk", "Training", "Compare"):
        tab(page, name)
        time.sleep(3)
        page.save_screenshot(str(shots / f"{name.lower().replace(' ', '-')}.png"))


def test_nothing_is_written_outside_the_run_folders(zoo, tmp_path):
    """A view of its own (the module's serves the other tests), every tab opened, then stopped with Ctrl-C."""
    before = {p: p.stat().st_mtime_ns for p in (zoo / "runs").rglob("*")}
    view = ViewServer([zoo / "runs"], tmp_path / "sandbox", free_port(), tmp_path / "view.log")
    browser = chromium(tmp_path / "chromium")
    try:
        browser.get(view.url)
        wait_for(lambda: cells(browser), 120, "the first grid")
        for name in ("Runs", "Latent walk", "Training", "Compare", "Sample"):      # every picture drawn once
            tab(browser, name)
            time.sleep(2)
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#curves img.curves"), 30, "the training curves")
    finally:
        browser.quit()
        code = view.stop()
    assert code == 0                                                # Ctrl-C: a clean stop
    assert view.written() == []                                     # home, temporary and working folder: empty
    assert {p: p.stat().st_mtime_ns for p in (zoo / "runs").rglob("*")} == before   # the runs untouched
