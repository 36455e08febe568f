"""Model cards: what a pretrained generator is, how it was made and how good it is, checked when it registers.

A card is a dict (or a JSON file holding one) passed with ``register_pretrained``'s ``register(name, weights,
card=...)``. Every field below is required but ``url`` and ``recipe``:

    description   one line: what it draws ("DCGAN on MNIST, 32x32")
    model, data   the registered model and dataset it was trained as (its weights file's config says the same)
    sha256        of the weights file, checked on every load (and on download)
    url           where to download the weights when no file ships with the package
    precision     how the weights are stored: float32, float16 or bfloat16 (widened to float32 on load)
    command       the command that trained it
    commit        the code it was trained with (git describe / commit id)
    date          when it was trained (ISO 8601)
    protocol      the training protocol in words (epochs, widths, seed, machine)
    evaluation    {"n": samples, "seed": latent seed, "metrics": [registered metric names], "command": ...}
    scores        {score: {"value": v, "low": a, "high": b}}: the file's score under `evaluation`, and the interval
                  it must stay in (a test samples every registered generator and checks it)
    real          {score: v}: the real-data floor, real training images scored the same way
    recipe        optional {score: {"mean", "low", "high", "n"}}: the recipe's interval over training seeds (the
                  leaderboard's), so one generator is never read as what the recipe typically gives
    headline      optional [score names]: the ones `ganzoo pretrained` shows first

Nothing here needs torch: cards are read while plugins load.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .errors import GanzooError

REQUIRED = ("description", "model", "data", "sha256", "precision", "command", "commit", "date", "protocol",
            "evaluation", "scores", "real")
PRECISIONS = ("float32", "float16", "bfloat16")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_card(card: Any, what: str) -> dict[str, Any]:
    """The card as a dict: given as one, or as the path of a JSON file holding one; a sentence otherwise."""
    if isinstance(card, (str, Path)):
        try:
            card = json.loads(Path(card).read_text())
        except OSError as exc:
            raise GanzooError(f"{what}'s card {card} cannot be read: {exc.strerror or exc}.") from None
        except (ValueError, RecursionError) as exc:
            raise GanzooError(f"{what}'s card {card} is not valid JSON: {str(exc)[:120]}.") from None
    if not isinstance(card, dict):
        raise GanzooError(f"{what} gives card={type(card).__name__}; give a dict or the path of a JSON file.")
    return dict(card)


def check_card(card: Any, what: str, weights: Any) -> dict[str, Any]:
    """The card, read and checked: every required field, a sha256 of 64 hex digits, scores with their interval,
    and either a weights file or a url to fetch one from. Raises one sentence naming what is wrong."""
    card = read_card(card, what)
    missing = [key for key in REQUIRED if key not in card]
    if missing:
        raise GanzooError(f"{what}'s card lacks {', '.join(missing)} (a card needs {', '.join(REQUIRED)}; see "
                          f"ganzoo.cards).")
    if not isinstance(card["sha256"], str) or not SHA256.match(card["sha256"].lower()):
        raise GanzooError(f"{what}'s card gives sha256 {card['sha256']!r}; it must be 64 hexadecimal digits.")
    card["sha256"] = card["sha256"].lower()
    if card["precision"] not in PRECISIONS:
        raise GanzooError(f"{what}'s card gives precision {card['precision']!r}; one of {', '.join(PRECISIONS)}.")
    if weights is None and not card.get("url"):
        raise GanzooError(f"{what} gives neither a weights file nor a url in its card to download one from.")
    if weights is not None and not isinstance(weights, (str, Path)):
        raise GanzooError(f"{what} gives weights={type(weights).__name__}; give the path of its .safetensors file "
                          f"(or None, with a url in its card).")
    if card.get("url") and not str(card["url"]).startswith(("https://", "http://", "file://")):
        raise GanzooError(f"{what}'s card gives url {card['url']!r}; give an http(s):// or file:// address.")
    evaluation = card["evaluation"]
    if (not isinstance(evaluation, dict) or not isinstance(evaluation.get("n"), int) or evaluation["n"] < 2
            or not isinstance(evaluation.get("seed"), int) or not isinstance(evaluation.get("metrics"), list)
            or not evaluation["metrics"]):
        raise GanzooError(f"{what}'s card gives evaluation {evaluation!r}; it needs n (samples, 2 or more), seed "
                          f"and metrics (a list of registered metric names).")
    scores = card["scores"]
    if not isinstance(scores, dict) or not scores:
        raise GanzooError(f"{what}'s card gives no scores; give {{score: {{value, low, high}}}}.")
    for name, score in scores.items():
        if not (isinstance(score, dict) and all(_number(score.get(k)) for k in ("value", "low", "high"))
                and score["low"] <= score["value"] <= score["high"]):
            raise GanzooError(f"{what}'s card gives the score {name} as {score!r}; it needs numbers value, low and "
                              f"high with low <= value <= high.")
    if not isinstance(card["real"], dict) or not all(_number(v) for v in card["real"].values()):
        raise GanzooError(f"{what}'s card gives the real-data floor as {card['real']!r}; give {{score: number}}.")
    return card


def headline(card: dict[str, Any], at_most: int = 2, sep: str = ", ") -> str:
    """'mnist_fd 14.1 (real 0.0928), mnist_score 8.3 (real 9.73)': the card's headline scores (its optional
    "headline" list, else its first scores) beside the real-data floor."""
    names = [n for n in card.get("headline", []) if n in card["scores"]] or list(card["scores"])
    parts = []
    for name in names[:at_most]:
        floor = card["real"].get(name)
        real = f" (real {floor:.3g})" if floor is not None else ""
        parts.append(f"{name} {card['scores'][name]['value']:.4g}{real}")
    return sep.join(parts)
