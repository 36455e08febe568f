"""What a trained GAN can show (Radford et al. 2015, sections 5-6), for any registered G and D.

Every analysis uses only the G(z) / D(x) interfaces and module introspection
(forward hooks on learnable layers), so it works for any registered network:

  common.py       loading G (and D) from a weights file, the indexed latent "sheet", image boards
  interpolate.py  latent walks, linear and spherical, as a PNG grid and an animated GIF
  arithmetic.py   z-vector arithmetic on averaged exemplars ("smiling woman - neutral woman + ...")
  filters.py      D's first-layer filters; G's feature maps for one sample
  features.py     hidden-layer taps, D features (section 5.1), the L2-SVM / logistic linear models
  labellers.py    pluggable labellers (images -> class ids) for picking exemplars automatically
  dropout.py      dropping chosen G feature maps (section 6.1), maps picked by a linear probe
  commands.py     the `ganzoo` subcommands: sheet, interpolate, arithmetic, filters, featuremaps,
                  probe, dropout
"""
