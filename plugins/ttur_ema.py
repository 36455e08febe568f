"""DCGAN with the two time-scale update rule (Heusel et al. 2017, arXiv:1706.08500: D learns faster,
4e-4 against G's 1e-4) and an exponential moving average of G's weights (Yazici et al. 2019,
arXiv:1806.04498), which the grids, samples, evaluation and the generator file use.
"""

from __future__ import annotations

from ganzoo.api import ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register("dcgan-ttur-ema", ModelSpec(generator="dcgan", discriminator="dcgan", loss="nonsaturating",
                                         defaults={"lr_d": 4e-4, "lr_g": 1e-4, "ema": 0.999}),
             "DCGAN with TTUR (Heusel et al. 2017: lr_D 4e-4, lr_G 1e-4) and an EMA of G (Yazici et al. 2019); "
             "at CPU budgets (5 epochs or fewer) its fast D wins and it trails dcgan (README, Training recipes)")
