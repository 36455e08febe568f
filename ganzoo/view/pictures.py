"""The viewer's pictures as HTML: every image travels inside the page as a data: URI, so the viewer writes no
file anywhere (not even in a temporary folder) and a cell's pixels in the browser are the PNG's exactly.

Grids are cells of PNG images (one <img> per sample, so a click can name the sample); curves are drawn by
matplotlib in memory.
"""

from __future__ import annotations

import base64
import html
import io
import json

import torch
from PIL import Image

from ..analysis.common import view_scale
from ..sampling import grid_columns, to_uint8

TRAIN_KEYS = ("step", "epoch", "d_won", "images_per_s", "train_time", "time")   # a loss record's bookkeeping
EVAL_KEYS = ("step", "epoch", "eval_n", "time")                                # an evaluation record's


def png(image: torch.Tensor | Image.Image) -> bytes:
    """One [C, H, W] image in [-1, 1] (or a PIL image) as PNG bytes, pixels rounded as a saved grid rounds them."""
    if isinstance(image, torch.Tensor):
        pixels = to_uint8(image.detach()).permute(1, 2, 0).numpy()
        image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels[..., :3])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def img(image: torch.Tensor | Image.Image, *, css: str = "", size: int | None = None, attrs: dict | None = None) -> str:
    """An <img> of one image, shown at `size` CSS pixels wide (pixels stay square: no smoothing)."""
    extra = "".join(f' {k}="{html.escape(str(v))}"' for k, v in (attrs or {}).items())
    width = f' style="width:{size}px"' if size else ""
    return f'<img class="{css}" src="{data_uri(png(image))}"{width}{extra}>'


def cell_size(resolution: int) -> int:
    """On-screen width of one sample: at least 64 CSS pixels, an integer multiple of the resolution."""
    return resolution * view_scale(resolution)


def grid_html(images: torch.Tensor, *, first: int = 0, titles: list[str] | None = None, params: dict | None = None,
              size: int | None = None, columns: int | None = None) -> str:
    """Samples as a grid of <img class="cell" data-index=i>; `params` (what drew them) ride on the grid as JSON."""
    n = len(images)
    columns = columns or grid_columns(n)
    size = size or cell_size(images.shape[-1])
    cells = [img(x, css="cell", size=size, attrs={"data-index": first + i, "title": (titles or [""] * n)[i],
                                                    "alt": f"sample {first + i}"})
             for i, x in enumerate(images)]
    data = html.escape(json.dumps(params or {}))
    return (f'<div class="ganzoo-grid" data-params="{data}" data-count="{n}" '
            f'style="grid-template-columns: repeat({columns}, {size}px)">{"".join(cells)}</div>')


def message(text: str, kind: str = "note") -> str:
    """A sentence in place of a picture: kind note, or error (red)."""
    return f'<div class="ganzoo-{kind}">{html.escape(text)}</div>'


def table(header: list[str], rows: list[list[str]], *, row_classes: list[str] | None = None, css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = (row_classes or [""] * len(rows))[i]
        cells = "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
        body.append(f'<tr class="{cls}" data-status="{cls}">{cells}</tr>')
    return f'<table class="ganzoo-table {css}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


# -- training curves ------------------------------------------------------------------------------

def curve_names(records: list[dict]) -> tuple[list[str], list[str], list[str]]:
    """(losses, other step statistics such as D(x) and D(G(z)), evaluation scores) the records hold."""
    losses = [r for r in records if "loss_d" in r]
    evals = [r for r in records if "eval_n" in r]
    stats = list(dict.fromkeys(k for r in losses for k, v in r.items()
                               if k not in TRAIN_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)))
    scores = list(dict.fromkeys(k for r in evals for k, v in r.items()
                                if k not in EVAL_KEYS and isinstance(v, (int, float))))
    return [k for k in stats if k.startswith("loss")], [k for k in stats if not k.startswith("loss")], scores


def curves_png(records: list[dict], title: str = "") -> bytes | None:
    """Losses, the D outputs and the --eval-every scores against the step, one panel each (None: nothing logged)."""
    from matplotlib.figure import Figure          # the object API: no global pyplot state, safe in threads

    losses = [r for r in records if "loss_d" in r]
    evals = [r for r in records if "eval_n" in r]
    loss_keys, stat_keys, score_keys = curve_names(records)
    panels = [("losses", loss_keys, losses)] * bool(loss_keys) + [("D outputs", stat_keys, losses)] * bool(stat_keys)
    panels += [(name, [name], evals) for name in score_keys]
    if not panels:
        return None
    figure = Figure(figsize=(3.6 * len(panels), 3.0), dpi=100)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, keys, rows) in zip(axes, panels):
        for key in keys:
            points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and "step" in r]
            if points:
                ax.plot(*zip(*points), "o-" if rows is evals else "-", lw=1, ms=3, label=key)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
