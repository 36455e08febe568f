"""The FID Inception v3 network (see inception.py): torchvision's Inception v3 with the FID changes pytorch-fid
documents, average pools that exclude padding and a max pool in the last block, up to the 2048-d pool features.

A module of its own because torchvision takes a second to import: the inception plugin loads it on first use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import Inception3, InceptionA, InceptionC, InceptionE


def _avg_pool_no_pad(x):
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class FIDInceptionA(InceptionA):
    """InceptionA whose average pool excludes the padding (as TF's FID Inception does)."""

    def _forward(self, x):
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(_avg_pool_no_pad(x))]


class FIDInceptionC(InceptionC):
    """InceptionC whose average pool excludes the padding."""

    def _forward(self, x):
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for i in range(1, 6):
            branch7x7dbl = getattr(self, f"branch7x7dbl_{i}")(branch7x7dbl)
        return [self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(_avg_pool_no_pad(x))]


class FIDInceptionE(InceptionE):
    """InceptionE with TF's pooling: padding-excluding average pool (Mixed_7b) or a max pool (Mixed_7c)."""

    def __init__(self, in_channels: int, pool: str):
        super().__init__(in_channels)
        self.pool = pool

    def _forward(self, x):
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        pooled = F.max_pool2d(x, 3, 1, 1) if self.pool == "max" else _avg_pool_no_pad(x)
        return [self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(pooled)]


TRUNK = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
         "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
         "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool"]


class FIDInception(Inception3):
    """The FID Inception v3 up to its 2048-d pool features (no classifier)."""

    def __init__(self):
        from torchvision.models.inception import BasicConv2d, InceptionAux, InceptionB, InceptionD

        super().__init__(num_classes=1008, aux_logits=False, transform_input=False, init_weights=False,
                         inception_blocks=[BasicConv2d, FIDInceptionA, InceptionB, FIDInceptionC, InceptionD,
                                           InceptionE, InceptionAux])
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Identity()   # the features are what FID compares; no 1008-way classifier weights needed

    def forward(self, images: torch.Tensor, resize: str | None = None) -> torch.Tensor:
        """uint8 images [B, 1 or 3, H, W] of any size -> pool features [B, 2048] (inception.RESIZES: `resize`)."""
        from .inception import DEFAULT_RESIZE, inception_input

        return self.features(inception_input(images, resize or DEFAULT_RESIZE))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Float images [B, 3, 299, 299] in [0, 255] -> pool features [B, 2048]."""
        x = (x - 128) / 128                                               # TF Inception's input range [-1, 1)
        for name in TRUNK:
            x = getattr(self, name)(x)
        return x.flatten(1)                                               # [B, 2048, 1, 1] -> [B, 2048]
