"""The report's pictures of sample quality beyond the table: precision against recall, and the samples closest to
a training image (the memorisation metric's exhibit, drawn by the comparison as each model is scored)."""

from __future__ import annotations

import math
from pathlib import Path

from .results import Results


def memorisation_picture(label: str) -> str:
    """The file name of a model's closest pairs in the report folder."""
    return f"memorisation-{label}.png"


def precision_recall_plot(results: Results, path: Path, plt) -> Path | None:
    """Precision against recall (Kynkäänniemi et al. 2019): each seed's final scores as small dots, the model's
    mean as a large one, real data as a grey star; None when no run has both numbers."""
    points = {label: [(r.scores["recall"], r.scores["precision"]) for r in entry.runs
                      if "recall" in r.scores and "precision" in r.scores]
              for label, entry in results.contenders.items()}
    if not any(points.values()):
        return None
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for i, (label, pairs) in enumerate(points.items()):
        if not pairs:
            continue
        recalls, precisions = zip(*pairs)
        if len(pairs) > 1:
            ax.scatter(recalls, precisions, color=f"C{i}", s=14, alpha=0.5)
        ax.scatter([sum(recalls) / len(recalls)], [sum(precisions) / len(precisions)], color=f"C{i}", s=60,
                   label=label, edgecolors="black", linewidths=0.5)
    real = results.real or {}
    if math.isfinite(real.get("recall", math.nan)) and math.isfinite(real.get("precision", math.nan)):
        ax.scatter([real["recall"]], [real["precision"]], marker="*", color="gray", s=120, label="real data")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("recall (real images the samples' manifold covers)")
    ax.set_ylabel("precision (samples inside the real manifold)")
    ax.set_title("precision against recall (k = 5)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    from ..checkpoint import atomic_write
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


def memorisation_section(results: Results, out: Path) -> list[str]:
    """report.md's lines showing each model's closest pairs, where the memorisation metric drew them."""
    lines = []
    for label in results.contenders:
        if (out / memorisation_picture(label)).is_file():
            lines += [f"![{label}: closest to training images]({memorisation_picture(label)})", ""]
    if not lines:
        return []
    return ["## Closest to a training image", "",
            "Each model's 8 samples nearest a training image (top) above that training image (bottom), in the "
            "metric's feature space; `memorised` in the table is the share of samples nearer a training image than "
            "any held-out (test) image is.", "", *lines]


def protocol_section(results: Results) -> list[str]:
    """report.md's record of how the table's scores were made (every model's agree: the comparison checked)."""
    protocol = next((r.protocol for e in results.contenders.values() for r in e.runs if r.protocol), None)
    if not protocol:
        return []
    from ..protocol import protocol_markdown

    return ["## Protocol", "", "How every score in the table was made (each model's and seed's protocol is in "
            "`results.json`; the real-data row differs only in scoring real training images). A comparison refuses "
            "to rank scores made under different protocols.", "", protocol_markdown(protocol), ""]
