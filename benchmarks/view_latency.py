"""How quick `ganzoo view` is on this machine, measured in a real browser (headless Chromium, as the tests drive it):

- from starting `ganzoo view FOLDER` to its address printed, and to the first grid of samples in the page;
- one move of the latent-walk slider (an arrow key on it) until the new image is in the page, at 32x32 (MNIST's
  DCGAN: 1 channel) and 64x64 (the paper's DCGAN on colour images: 3 channels), default widths.

The generators are freshly initialised (drawing costs the same trained or not) and written as weights files to a
temporary folder, unless --runs names a folder to view instead. Prints a table (median and range over --moves).

    python benchmarks/view_latency.py                  # the numbers
    python benchmarks/view_latency.py --smoke          # a quick check that it works
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "view"))
from browser import chromium, free_port, tab, wait_for  # noqa: E402  (the tests' own Chromium set-up)

# Each key press on the slider: the time of the keydown, then of the walk image carrying the new position, decoded.
WATCH = """
window.__moves = [];
const slider = document.querySelector('#walk-t input[type=range]');
slider.addEventListener('keydown', () => {
  const img = document.querySelector('#walk-point img.walk-point');
  window.__moves.push({down: performance.now(), from: img ? img.dataset.t : null});
}, true);
new MutationObserver(() => {
  const img = document.querySelector('#walk-point img.walk-point');
  const last = window.__moves[window.__moves.length - 1];
  if (!img || !last || last.done || img.dataset.t === last.from) return;
  img.decode().then(() => { if (!last.done) { last.done = performance.now(); } });
}).observe(document.querySelector('#walk-point'), {subtree: true, childList: true, attributes: true});
"""


def make_generators(folder: Path, smoke: bool) -> dict[int, Path]:
    from ganzoo.checkpoint import save_generator
    from ganzoo.models import build_network
    from ganzoo.run import make_config

    width = 8 if smoke else 64
    files = {}
    for size, channels in ((32, 1), (64, 3)):
        config = make_config("dcgan", {"data": "fake", "image_size": size, "channels": channels, "g_width": width,
                                       "d_width": width, "device": "cpu"})
        files[size] = save_generator(folder / f"dcgan-{size}.safetensors", build_network("generator", config), config)
    return files


def slider_moves(page, key: str, moves: int) -> list[float]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    page.execute_script(WATCH)
    slider = page.find_element(By.CSS_SELECTOR, "#walk-t input[type=range]")
    out = []
    for i in range(moves):
        slider.send_keys(Keys.ARROW_RIGHT if i % 2 == 0 else Keys.ARROW_LEFT)
        done = wait_for(lambda: page.execute_script(
            "const m = window.__moves[window.__moves.length - 1]; return m && m.done ? m.done - m.down : null"),
            30, f"slider move {i + 1} on {key}", interval=0.01)
        out.append(done / 1000)
        time.sleep(0.3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=None, help="a folder to view instead of fresh generators")
    parser.add_argument("--moves", type=int, default=15, help="slider moves per resolution (default 15)")
    parser.add_argument("--threads", type=int, default=None, help="ganzoo view --threads")
    parser.add_argument("--smoke", action="store_true", help="narrow generators, 2 moves: does it work at all")
    args = parser.parse_args()
    moves = 2 if args.smoke else args.moves
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.runs:
            folder, files = Path(args.runs), {}
        else:
            folder = tmp / "runs"
            folder.mkdir()
            files = make_generators(folder, args.smoke)
        page = chromium(tmp / "chromium")
        port = free_port()
        log = tmp / "view.log"
        command = [sys.executable, "-m", "ganzoo", "view", str(folder), "--port", str(port)]
        command += ["--threads", str(args.threads)] if args.threads else []
        start = time.monotonic()
        view = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        try:
            url = wait_for(lambda: (re.search(r"ganzoo view: (http://\S+)", log.read_text()) or [None, None])[1],
                           300, "the address", interval=0.05)
            address_s = time.monotonic() - start
            page.get(url)
            wait_for(lambda: page.execute_script("return document.querySelectorAll('#grid img.cell').length"), 300,
                     "the first grid", interval=0.05)
            first_grid_s = time.monotonic() - start
            rows = [("`ganzoo view` started: address printed", f"{address_s:.1f} s", ""),
                    ("... first grid of 64 samples in the page", f"{first_grid_s:.1f} s", "")]
            for size, path in files.items():
                key = str(path)
                tab(page, "Runs")
                wait_for(lambda: page.find_elements("css selector", f"tr[data-key='{key}']"), 30, "the row")[0].click()
                tab(page, "Latent walk")
                wait_for(lambda: page.execute_script(
                    f"const i = document.querySelector('#walk-a img'); return i && i.naturalWidth === {size}"), 60,
                    f"the walk of {path.name}")
                times = slider_moves(page, path.name, moves)
                rows.append((f"one slider move, {size}x{size} ({path.name})",
                             f"{statistics.median(times) * 1000:.0f} ms",
                             f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms over {len(times)}"))
        finally:
            view.terminate()
            view.wait(60)
            page.quit()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"ganzoo view, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load:.1f} at the end{' (smoke)' if args.smoke else ''}\n")
    print("| what | median | range |\n|---|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
