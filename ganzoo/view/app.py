"""The gradio app of `ganzoo view`: tabs Runs, Sample, Latent walk, Training and Compare over the entries the
sources find (ganzoo.view.catalog), drawing with ganzoo.view.drawing and showing with ganzoo.view.pictures.

Each callback is guarded: whatever goes wrong becomes a sentence where the picture would be, never a
traceback in the browser and never a stopped server.
"""

from __future__ import annotations

import functools
import html
import json
import threading
import time
from pathlib import Path
from typing import Sequence

from ..errors import GanzooError

try:
    import gradio as gr
except ImportError:                      # the optional extra: its own sentence, not a traceback
    raise GanzooError("ganzoo view needs gradio, an optional extra: pip install 'pyganzoo[view]'.") from None
from . import drawing, pictures
from .catalog import EMA, ROW_HEADER, Entry, discover
from .drawing import Generators, Point

REFRESH_S = 2.0              # how often the Runs table, a training run's curves and grid are looked at again
WALK_STEPS = 9               # images in a walk's strip
TARGETS = ["walk start A", "walk end B", "group A", "group B", "group C"]
EVERY_CLASS = "every class"

CSS = """
.ganzoo-grid { display: grid; gap: 2px; padding: 2px; background: #181818; width: max-content; max-width: 100%; }
.ganzoo-grid img, .ganzoo-pixels img, img.ganzoo-pixels { image-rendering: pixelated; display: block; }
.ganzoo-grid img.cell { cursor: pointer; }
.ganzoo-grid img.cell:hover { outline: 2px solid #f0b400; }
.ganzoo-error { color: #b00020; font-weight: 600; padding: 8px 0; }
.ganzoo-note { color: #555; padding: 4px 0; }
.ganzoo-table { border-collapse: collapse; font-size: 13px; width: 100%; }
.ganzoo-table th, .ganzoo-table td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; }
.ganzoo-table tr.error td { background: #fde7ea; color: #8a0016; }
.ganzoo-table tr.diverged td { background: #fff1dc; }
.ganzoo-table tr.training td { background: #e8f6e9; }
.ganzoo-table.runs tbody tr { cursor: pointer; }
.ganzoo-table.runs tbody tr:hover td { background: #eef3ff; }
.ganzoo-walk { display: flex; gap: 16px; align-items: flex-end; flex-wrap: wrap; }
.ganzoo-walk figure { margin: 0; text-align: center; font-size: 12px; color: #555; }
.ganzoo-side { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.ganzoo-side figure { margin: 0; font-size: 12px; }
button.ganzoo-download { margin: 6px 0; padding: 4px 10px; border: 1px solid #bbb; border-radius: 6px; background: #f6f6f6; }
"""

# Clicks on the grid: a sample names itself (trigger → Python), the download button asks the server for the
# grid's PNG (drawn as `ganzoo sample` draws it) and saves it under the name the button carries.
GRID_JS = """
element.addEventListener('click', (event) => {
  const cell = event.target.closest('img.cell');
  if (cell) { trigger('click', {index: Number(cell.dataset.index)}); return; }
  const button = event.target.closest('button.ganzoo-download');
  const grid = element.querySelector('.ganzoo-grid');
  if (!button || !grid) return;
  button.disabled = true;
  server.grid_png(grid.dataset.params).then((uri) => {
    if (!uri) return;
    const link = document.createElement('a');
    link.href = uri; link.download = button.dataset.name;
    document.body.appendChild(link); link.click(); link.remove();
  }).finally(() => { button.disabled = false; });
});
"""

ROWS_JS = """
element.addEventListener('click', (event) => {
  const row = event.target.closest('tbody tr');
  if (row && row.dataset.key) trigger('click', {key: row.dataset.key});
});
"""


KIND_WORDS = {"weights": "a weights file", "compare": "a compare report", "pretrained": "a pretrained generator",
              "error": "a file that could not be read"}


class Viewer:
    """The server's side: the paths, the entries found under them (looked at again at most every second) and
    the generators already rebuilt."""

    def __init__(self, paths: Sequence[str | Path]):
        self.paths = [Path(p) for p in paths]
        self.generators = Generators()
        self._entries: list[Entry] = []
        self._found_at = -1.0
        self._lock = threading.Lock()

    def entries(self, max_age: float = 1.0) -> list[Entry]:
        with self._lock:
            if time.monotonic() - self._found_at > max_age:
                self._entries = discover(self.paths)
                self._found_at = time.monotonic()
            return self._entries

    def entry(self, key: str | None) -> Entry:
        if not key:
            raise GanzooError("Pick a run first (the list above, or a row of the Runs tab).")
        for entry in self.entries():
            if entry.key == key:
                return entry
        raise GanzooError(f"{key} is no longer there (moved or deleted?).")

    def generator(self, key: str, name: str | None):
        return self.generators.get(self.entry(key), name)


def guarded(outputs: int = 1):
    """Run a callback so that any failure shows as a one-sentence message in its first output (an HTML block),
    the other outputs left as they are."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except GanzooError as exc:
                text = str(exc)
            except OSError as exc:
                where = f" {exc.filename}" if exc.filename else ""
                text = f"Could not read{where}: {exc.strerror or exc}."
            except Exception as exc:  # a bug here or in a plugin: a sentence, and the server goes on
                first = str(exc).splitlines()[0][:300] if str(exc) else ""
                text = f"internal error: {type(exc).__name__}: {first} (a bug in ganzoo or a plugin; please report it)."
            error = pictures.message(text, "error")
            return error if outputs == 1 else (error, *[gr.skip()] * (outputs - 1))

        return inner

    return wrap


def _choices(entries: list[Entry]) -> list[tuple[str, str]]:
    return [(f"{e.key} · {e.model or e.kind} · {e.status}", e.key) for e in entries]


def _pickable(entries: list[Entry]) -> list[Entry]:
    """What the run picker offers: whatever can draw, every run (one training may have no weights yet) and every
    error (opened, it says its sentence)."""
    return [e for e in entries if e.loaders or e.kind == "run" or e.status == "error"]


def _first_drawable(entries: list[Entry]) -> str | None:
    for entry in entries:
        if entry.loaders:
            return entry.key
    return entries[0].key if entries else None


def runs_table(viewer: Viewer) -> str:
    entries = viewer.entries()
    if not entries:
        where = ", ".join(str(p) for p in viewer.paths)
        return pictures.message(f"No run folders, weights files or compare reports under {where}. Train one: "
                                f"ganzoo run dcgan --data mnist --out runs/dcgan", "note")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in ROW_HEADER)
    rows = []
    for e in entries:
        status = e.status.split(" ")[0]
        cells = "".join(f"<td>{html.escape(str(c))}</td>" for c in e.row())
        rows.append(f'<tr class="{html.escape(status)}" data-status="{html.escape(status)}" '
                    f'data-key="{html.escape(e.key)}" title="click to open">{cells}</tr>')
    return (f'<table class="ganzoo-table runs"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}'
            f'</tbody></table><div class="ganzoo-note">{len(entries)} entries under '
            f'{html.escape(", ".join(str(p) for p in viewer.paths))}; looked at every {REFRESH_S:g} s. '
            f'Click a row to open it.</div>')


def download_png(viewer: Viewer, params: str) -> str:
    """The grid's download, as a data: URI: the PNG `ganzoo sample --seed S -n N [--class C]` writes for the
    samples the grid shows ("" when they cannot be drawn: the grid already says why)."""
    from ..sampling import grid_columns, grid_png
    try:
        p = json.loads(params)
        G, config = viewer.generator(p["key"], p["generator"])
        images = drawing.grid(G, config, p["n"], p["seed"], p["cls"])
        return pictures.data_uri(grid_png(images, nrow=grid_columns(len(images))))
    except (GanzooError, OSError, ValueError, KeyError, TypeError):
        return ""


def compare_view(viewer: Viewer, report_key: str | None, keys, n, seed) -> str:
    """Runs side by side on the same z (samples 0..n-1 of `seed` from each), their last scores, and a compare
    report's own table when one is picked."""
    entries = viewer.entries()
    report = next((e for e in entries if e.key == report_key and e.kind == "compare"), None)
    keys = list(keys or [])
    if not keys:
        return pictures.message("Pick two or more runs (or a compare report) to see them side by side.", "note")
    runs, errors = [], []
    for key in keys:
        try:
            entry = viewer.entry(key)
            G, config = viewer.generators.get(entry)
            runs.append((entry, G, config))
        except GanzooError as exc:
            errors.append((key, str(exc)))
    drawn, note = drawing.same_z([(e.key, G, c) for e, G, c in runs], drawing.check_count(n),
                                 drawing.check_seed(seed))
    figures = []
    for (entry, _, config), (label, images) in zip(runs, drawn):
        size = pictures.cell_size(config.image_size) // 2 or config.image_size
        figures.append(f'<figure>{pictures.grid_html(images, size=size)}<figcaption><b>{html.escape(label)}'
                       f'</b><br>{html.escape(entry.model)}, {html.escape(entry.status)}</figcaption></figure>')
    figures += [f'<figure>{pictures.message(f"{k}: {m}", "error")}</figure>' for k, m in errors]
    out = f'<div class="ganzoo-side">{"".join(figures)}</div>'
    out += pictures.message(f"samples 0..{int(n) - 1} of seed {int(seed)} from each: "
                            + (note if note else "the same z in every run."), "note")
    names = list(dict.fromkeys(k for e, _, _ in runs for k in e.scores))
    rows = [[e.key, e.model, e.status, e.progress] + [f"{e.scores[k]:.4g}" if k in e.scores else "-"
                                                       for k in names] for e, _, _ in runs]
    out += "<h4>last scores</h4>" + (pictures.table(["run", "model", "status", "progress"] + names, rows)
                                     if rows else "")
    if report is not None:
        out += f"<h4>{html.escape(report.key)}: the report's table</h4>" + report_table(report)
    return out


def report_table(report: Entry) -> str:
    from ..compare.report import table_rows
    from ..compare.results import Results

    results = Results.from_dict(json.loads((report.path / "results.json").read_text()))
    header, rows = table_rows(results)
    return pictures.table(header, [[t + (" ★" if best else "") for t, best in row] for row in rows])


def build(viewer: Viewer) -> gr.Blocks:
    """The app over `viewer`'s entries."""

    # -- callbacks ------------------------------------------------------------------------------
    def entry_controls(key):
        """The generator and class pickers that fit the chosen entry."""
        try:
            entry = viewer.entry(key)
        except GanzooError:
            return gr.Radio(visible=False), gr.Radio(visible=False)
        names = list(entry.loaders)
        generator = gr.Radio(choices=names, value=names[0] if names else None, visible=len(names) > 1)
        classes = [EVERY_CLASS] + [str(c) for c in range(entry.conditional)]
        cls = gr.Radio(choices=classes, value=EVERY_CLASS, visible=bool(entry.conditional))
        return generator, cls

    def _cls(value):
        return None if value in (None, "", EVERY_CLASS) else int(value)

    @guarded(2)
    def draw_grid(key, name, cls, seed, n):
        G, config = viewer.generator(key, name)
        seed, n, c = drawing.check_seed(seed), drawing.check_count(n), _cls(cls)
        images = drawing.grid(G, config, n, seed, c)
        params = {"key": key, "generator": name, "cls": c, "seed": seed, "n": n}
        by_class = config.num_classes if config.num_classes and c is None and n >= config.num_classes else None
        grid = pictures.grid_html(images, titles=drawing.sample_titles(config, n, seed, c), params=params,
                                  columns=by_class)                  # every class in turn: one column per class
        label = Path(key).name or "samples"
        stem = f"{label}-seed{seed}-n{n}" + (f"-class{c}" if c is not None else "")
        button = (f'<button class="ganzoo-download" data-name="{html.escape(stem)}.png">Download PNG '
                  f'(the grid `ganzoo sample` writes)</button>')
        entry = viewer.entry(key)
        caption = (f"{n} samples of seed {seed} from {key} ({config.model}, {config.image_size}x{config.image_size}"
                   + (f", {name}" if len(entry.loaders) > 1 else "") + (f", class {c}" if c is not None else "")
                   + "). Sample i is `ganzoo sample --seed` / `ganzoo sheet`'s number i; click one to pick it.")
        return grid + button, pictures.message(caption, "note")

    def grid_png(params: str) -> str:
        return download_png(viewer, params)

    def pick(target, seed, a_seed, a_index, b_seed, b_index, group_a, group_b, group_c, evt: gr.EventData):
        """A clicked sample becomes a walk's end or joins a group."""
        index = int(evt._data["index"])
        values = dict(a_seed=a_seed, a_index=a_index, b_seed=b_seed, b_index=b_index, group_a=group_a,
                      group_b=group_b, group_c=group_c)
        if target == TARGETS[0]:
            values.update(a_seed=seed, a_index=index)
        elif target == TARGETS[1]:
            values.update(b_seed=seed, b_index=index)
        else:
            name = {"group A": "group_a", "group B": "group_b", "group C": "group_c"}[target]
            numbers = [p.strip() for p in (values[name] or "").split(",") if p.strip()]
            if str(index) not in numbers:
                numbers.append(str(index))
            values[name] = ",".join(numbers)
        return tuple(values.values())

    def _points(a_seed, a_index, b_seed, b_index):
        for v, what in ((a_index, "A's sample number"), (b_index, "B's sample number")):
            if v is None or int(v) != v or v < 0:
                raise GanzooError(f"{what} is a whole number from 0 up, got {v}.")
        return Point(drawing.check_seed(a_seed), int(a_index)), Point(drawing.check_seed(b_seed), int(b_index))

    @guarded(3)
    def draw_walk_ends(key, name, cls, a_seed, a_index, b_seed, b_index, mode):
        G, config = viewer.generator(key, name)
        a, b = _points(a_seed, a_index, b_seed, b_index)
        c = _cls(cls)
        size = pictures.cell_size(config.image_size)
        ends = [drawing.walk_point(G, config, a, b, t, mode, c) for t in (0.0, 1.0)]
        strip = drawing.walk_strip(G, config, a, b, WALK_STEPS, mode, c)
        fixed = drawing.walk_generator(G, config, a, c)
        note = f", class {fixed.cls} fixed" if fixed is not G else ""
        figures = [f'<figure class="ganzoo-pixels" style="margin:0">{pictures.img(image, css=css, size=size * 2)}'
                   f'<figcaption class="ganzoo-note">{label}: sample {p.index} of seed {p.seed}</figcaption></figure>'
                   for image, css, label, p in ((ends[0], "walk-a", "A", a), (ends[1], "walk-b", "B", b))]
        html_strip = (f'<div class="ganzoo-note">the whole walk in {WALK_STEPS} steps, {mode}{note}:</div>'
                      + pictures.grid_html(strip, columns=len(strip), size=size))
        return figures[0], figures[1], html_strip

    @guarded(1)
    def draw_walk_point(key, name, cls, a_seed, a_index, b_seed, b_index, mode, t):
        G, config = viewer.generator(key, name)
        a, b = _points(a_seed, a_index, b_seed, b_index)
        image = drawing.walk_point(G, config, a, b, float(t), mode, _cls(cls))
        size = pictures.cell_size(config.image_size) * 3
        return (f'<figure class="ganzoo-pixels" style="margin:0">'
                f'{pictures.img(image, css="walk-point", size=size, attrs={"data-t": f"{float(t):g}"})}'
                f'<figcaption class="ganzoo-note">t = {float(t):.2f} ({mode})</figcaption></figure>')

    @guarded(1)
    def draw_arithmetic(key, name, cls, seed, group_a, group_b, group_c):
        G, config = viewer.generator(key, name)
        board = drawing.arithmetic(G, config, drawing.check_seed(seed), (group_a or "", group_b or "", group_c or ""),
                                   _cls(cls))
        return (f'<div class="ganzoo-pixels">{pictures.img(board, css="arithmetic")}</div>'
                f'<div class="ganzoo-note">rows: each group\'s samples and the image of their mean z; last row: '
                f'mean A - mean B + mean C, then that z plus small noise (the DCGAN paper\'s section 6.3).</div>')

    @guarded(5)
    def training(key, grid_index, shown):
        """Curves, scores and the epoch grids of a run; outputs skipped when nothing changed since `shown`."""
        entry = viewer.entry(key)
        files = entry.folder
        if files is None:
            what = KIND_WORDS.get(entry.kind, f"a {entry.kind}")
            note = pictures.message(f"{key} is {what}, not a run folder: it has no training log."
                                    + (f" It was trained by: {entry.message}" if entry.kind == "pretrained" else ""),
                                    "note")
            return note, "", gr.Slider(visible=False), "", None
        signature = json.dumps([key, entry.signature, len(files.grids())], default=str)
        if shown == signature:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        records = files.records()
        curves = pictures.curves_png(records, title=f"{key} ({entry.status})")
        last = next((r for r in reversed(records) if "step" in r), {})
        points = sum(1 for r in records if "loss_d" in r)
        curve_html = (pictures.message("No log records yet (the first after --log-every steps).", "note")
                      if curves is None else
                      f'<img class="curves" src="{pictures.data_uri(curves)}" data-points="{points}" '
                      f'data-last-step="{last.get("step", 0)}" style="max-width:100%">')
        evals = [r for r in records if "eval_n" in r]
        if evals:
            names = pictures.curve_names(records)[2]
            rows = [[str(r.get("step")), f"{r.get('epoch', 0):.2f}", str(r.get("eval_n"))]
                    + [f"{r[n]:.4g}" if isinstance(r.get(n), (int, float)) else "-" for n in names] for r in evals]
            scores = pictures.table(["step", "epoch", "samples"] + names, rows)
        else:
            scores = pictures.message("No scores logged: train with --eval-every K to score every K epochs "
                                      "(or run ganzoo eval on the weights).", "note")
        grids = files.grids()
        before = json.loads(shown) if shown else None               # what was shown: [key, signature, grids]
        following = (before is None or before[0] != key or grid_index is None
                     or int(grid_index) >= before[2] - 1)                 # at the newest grid: stay at the newest
        index = len(grids) - 1 if following else int(grid_index)
        slider = gr.Slider(minimum=0, maximum=max(1, len(grids) - 1), value=max(0, index), step=1,
                           visible=bool(grids), label=f"epoch grids ({len(grids)}): drag to scrub through training")
        return (curve_html + f'<div class="ganzoo-note">{points} log records, last at step {last.get("step", 0)}; '
                             f'{entry.status}</div>', scores, slider, grid_image(key, index),
                signature)

    def grid_image(key, index) -> str:
        files = viewer.entry(key).folder
        grids = files.grids() if files else []
        if not grids:
            return pictures.message("No epoch grids yet: one is written after every epoch.", "note")
        index = min(max(0, int(index or 0)), len(grids) - 1)
        path = grids[index]
        what = (f"after epoch {int(path.stem.split('_')[1])}" if path.stem.startswith("epoch_")
                else f"at step {int(path.stem.split('_')[1])}, where the budget ran out")
        return (f'<figure class="ganzoo-pixels" style="margin:0"><img class="epoch-grid" '
                f'src="{pictures.data_uri(path.read_bytes())}" style="width:min(100%, 640px)">'
                f'<figcaption class="ganzoo-note">{html.escape(str(path))}: the fixed noise {what}</figcaption>'
                f'</figure>')

    @guarded(1)
    def scrub(key, index):
        return grid_image(key, index)

    @guarded(1)
    def compare(report_key, keys, n, seed):
        return compare_view(viewer, report_key, keys, n, seed)

    def pick_report(report_key):
        entries = viewer.entries()
        report = next((e for e in entries if e.key == report_key and e.kind == "compare"), None)
        if report is None:
            return gr.skip()
        return gr.Dropdown(value=report.members[:8])

    def refresh_lists(known):
        """New or vanished entries: the pickers' choices follow (skipped when nothing changed)."""
        entries = viewer.entries()
        keys = json.dumps([e.key for e in entries])
        if keys == known:
            return gr.skip(), gr.skip(), gr.skip(), known
        return (gr.Dropdown(choices=_choices(_pickable(entries))),
                gr.Dropdown(choices=[(e.key, e.key) for e in entries if e.kind == "compare"]),
                gr.Dropdown(choices=[(e.key, e.key) for e in entries if e.loaders]), keys)

    @guarded(3)
    def live_sample(key, name, cls, seed, n, shown):
        """A run that is training: its grid is drawn again when new weights land (the pickers draw the rest)."""
        entry = viewer.entry(key)
        now = json.dumps([key, entry.signature], default=str)
        if shown == now:
            return gr.skip(), gr.skip(), gr.skip()
        if shown is None or json.loads(shown)[0] != key:
            return gr.skip(), gr.skip(), now              # a new pick: drawn by its own event, just remember it
        return (*draw_grid(key, name, cls, seed, n), now)

    def open_row(evt: gr.EventData):
        """A click on a row of the Runs table opens that entry (with the picker's choices as they are now: the
        row may be of a run that appeared a moment ago)."""
        key = evt._data.get("key")
        if not key:
            return gr.skip()
        return gr.Dropdown(choices=_choices(_pickable(viewer.entries())), value=key)

    def initial():
        entries = viewer.entries(max_age=0)
        drawable = _pickable(entries)
        first = _first_drawable(drawable)
        reports = [e for e in entries if e.kind == "compare"]
        both = [e.key for e in entries if e.loaders]
        chosen = reports[0].members[:8] if reports else both[:2]       # something side by side from the start
        return (runs_table(viewer), gr.Dropdown(choices=_choices(drawable), value=first),
                gr.Dropdown(choices=[(e.key, e.key) for e in reports], value=reports[0].key if reports else None),
                gr.Dropdown(choices=[(k, k) for k in both], value=chosen),
                json.dumps([e.key for e in entries]))

    # -- layout ---------------------------------------------------------------------------------
    with gr.Blocks(title="ganzoo view") as app:
        gr.Markdown("## ganzoo view\nSample a trained generator, walk its latent space, watch it train, compare runs. "
                    "Everything is drawn on this machine's CPU; nothing is written to disk.")
        with gr.Row():
            run = gr.Dropdown(label="run", choices=[], value=None, scale=3, elem_id="run")
            generator = gr.Radio(label="generator", choices=[EMA], visible=False, scale=1, elem_id="generator",
                                 info="EMA G: the averaged weights (what sample and eval use); raw G: the trained ones")
            cls = gr.Radio(label="class", choices=[EVERY_CLASS], value=EVERY_CLASS, visible=False, scale=2,
                           elem_id="class", info="a conditional model's class to draw")
        known = gr.State(None)
        with gr.Tabs(elem_id="tabs", selected="sample"):
            with gr.Tab("Runs", id="runs"):
                runs_html = gr.HTML(elem_id="runs-table", js_on_load=ROWS_JS)
            with gr.Tab("Sample", id="sample"):
                with gr.Row():
                    seed = gr.Slider(0, 9999, value=0, step=1, label="seed", elem_id="seed")
                    count = gr.Slider(1, drawing.MAX_SAMPLES, value=64, step=1, label="samples", elem_id="count")
                target = gr.Radio(TARGETS, value=TARGETS[0], label="clicking a sample picks it as",
                                  elem_id="target")
                grid_html = gr.HTML(elem_id="grid", js_on_load=GRID_JS, server_functions=[grid_png])
                grid_note = gr.HTML(elem_id="grid-note")
                sample_shown = gr.State(None)
            with gr.Tab("Latent walk", id="walk"):
                gr.Markdown("Walk from sample A to sample B (pick them by clicking samples in the Sample tab, or "
                            "type seeds and sample numbers). Spherical follows the great circle (slerp) and keeps z "
                            "of a typical length; linear cuts straight through (its middle lies closer to 0).")
                with gr.Row():
                    a_seed = gr.Number(0, label="A: seed", precision=0, elem_id="a-seed")
                    a_index = gr.Number(0, label="A: sample number", precision=0, elem_id="a-index")
                    b_seed = gr.Number(1, label="B: seed", precision=0, elem_id="b-seed")
                    b_index = gr.Number(0, label="B: sample number", precision=0, elem_id="b-index")
                    mode = gr.Radio(["slerp", "lerp"], value="slerp", label="path", elem_id="mode")
                with gr.Row(equal_height=False):
                    walk_a_html = gr.HTML(elem_id="walk-a", min_width=80)
                    with gr.Column(scale=3):
                        walk_t = gr.Slider(0, 1, value=0.5, step=0.01, label="from A (0) to B (1)", elem_id="walk-t")
                        walk_point_html = gr.HTML(elem_id="walk-point")
                    walk_b_html = gr.HTML(elem_id="walk-b", min_width=80)
                walk_strip_html = gr.HTML(elem_id="walk-strip")
                gr.Markdown("### Vector arithmetic: A − B + C\nSample numbers of the Sample tab's seed in each "
                            "group (click samples there with 'group A/B/C' picked, or type 3,7,12). The mean z of "
                            "each group is combined: e.g. 'smiling woman' − 'neutral woman' + 'neutral man'.")
                with gr.Row():
                    group_a = gr.Textbox(label="group A (+)", elem_id="group-a")
                    group_b = gr.Textbox(label="group B (−)", elem_id="group-b")
                    group_c = gr.Textbox(label="group C (+)", elem_id="group-c")
                arithmetic_button = gr.Button("A − B + C", elem_id="arithmetic-go")
                arithmetic_html = gr.HTML(elem_id="arithmetic")
            with gr.Tab("Training", id="training"):
                curves_html = gr.HTML(elem_id="curves")
                scores_html = gr.HTML(elem_id="scores")
                scrubber = gr.Slider(0, 1, value=0, step=1, label="epoch grids", visible=False, elem_id="scrubber")
                epoch_grid_html = gr.HTML(elem_id="epoch-grid")
                training_shown = gr.State(None)
            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    report = gr.Dropdown(label="a compare report (opens its runs and table)", choices=[],
                                         elem_id="report")
                    picked = gr.Dropdown(label="runs side by side", choices=[], multiselect=True, elem_id="picked")
                with gr.Row():
                    compare_seed = gr.Slider(0, 9999, value=0, step=1, label="seed", elem_id="compare-seed")
                    compare_n = gr.Slider(1, 64, value=16, step=1, label="samples each", elem_id="compare-n")
                compare_html = gr.HTML(elem_id="compare-view")
        timer = gr.Timer(REFRESH_S)

        # -- wiring -----------------------------------------------------------------------------
        # User moves (.input) draw at once, the latest move winning; a new run first sets its pickers, then draws.
        quiet = dict(show_progress="hidden", trigger_mode="always_last")
        sample_in = [run, generator, cls, seed, count]
        walk_in = [run, generator, cls, a_seed, a_index, b_seed, b_index, mode]
        training_out = [curves_html, scores_html, scrubber, epoch_grid_html, training_shown]

        def redraw(event, grid=True, walk=True):
            if grid:
                event = event.then(draw_grid, sample_in, [grid_html, grid_note], **quiet)
            if walk:
                event = event.then(draw_walk_point, walk_in + [walk_t], walk_point_html, **quiet)
                event = event.then(draw_walk_ends, walk_in, [walk_a_html, walk_b_html, walk_strip_html], **quiet)
            return event

        app.load(initial, None, [runs_html, run, report, picked, known], show_progress="hidden")
        runs_html.click(open_row, None, run, show_progress="hidden")
        chosen = redraw(run.change(entry_controls, run, [generator, cls], show_progress="hidden"))
        chosen.then(lambda key: training(key, None, None), run, training_out, show_progress="hidden")
        for control in (generator, cls):
            redraw(control.input(lambda: None, None, None, **quiet))
        for control in (seed, count):
            control.input(draw_grid, sample_in, [grid_html, grid_note], **quiet)
        for control in (a_seed, a_index, b_seed, b_index, mode):
            redraw(control.input(lambda: None, None, None, **quiet), grid=False)
        walk_t.input(draw_walk_point, walk_in + [walk_t], walk_point_html, **quiet)
        redraw(grid_html.click(pick, [target, seed, a_seed, a_index, b_seed, b_index, group_a, group_b, group_c],
                               [a_seed, a_index, b_seed, b_index, group_a, group_b, group_c],
                               show_progress="hidden"), grid=False)
        arithmetic_button.click(draw_arithmetic, [run, generator, cls, seed, group_a, group_b, group_c],
                                arithmetic_html)
        scrubber.input(scrub, [run, scrubber], epoch_grid_html, **quiet)
        report.change(pick_report, report, picked, show_progress="hidden")
        for control in (report, picked, compare_seed, compare_n):
            control.change(compare, [report, picked, compare_n, compare_seed], compare_html, **quiet)
        timer.tick(lambda: runs_table(viewer), None, runs_html, show_progress="hidden")
        timer.tick(refresh_lists, known, [run, report, picked, known], show_progress="hidden")
        timer.tick(training, [run, scrubber, training_shown], training_out, show_progress="hidden")
        timer.tick(live_sample, sample_in + [sample_shown], [grid_html, grid_note, sample_shown],
                   show_progress="hidden")
    return app
