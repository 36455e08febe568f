"""The built-in pretrained generators: every card in the package's weights/pretrained/ folder, with its weights
beside it.

    weights/pretrained/dcgan-mnist.card.json    the model card (ganzoo.cards: how it was trained, its scores)
    weights/pretrained/dcgan-mnist.safetensors  the generator file, in half precision

benchmarks/ship_pretrained.py writes both from a run and its `ganzoo eval` numbers; dropping a new pair in the
folder is all it takes to ship another.
"""

from __future__ import annotations

from pathlib import Path

from ganzoo.api import hookimpl

FOLDER = Path(__file__).with_name("weights") / "pretrained"
CARD_SUFFIX = ".card.json"


def shipped() -> list[tuple[str, Path, Path]]:
    """(name, weights file, card file) of every generator in the folder."""
    cards = sorted(FOLDER.glob(f"*{CARD_SUFFIX}"))
    return [(card.name[:-len(CARD_SUFFIX)], card.with_name(card.name[:-len(CARD_SUFFIX)] + ".safetensors"), card)
            for card in cards]


@hookimpl
def register_pretrained(register):
    for name, weights, card in shipped():
        register(name, weights, card=card)
