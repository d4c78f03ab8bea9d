"""PyTorch reference of TorchXRayVision's DenseNet-121, built from ``torch.nn`` alone.

State-dict keys and shapes are torchvision DenseNet-121's (``features.conv0.weight``,
``features.denseblock1.denselayer1.norm1.running_mean``, ``features.transition1.conv.weight``,
``features.norm5.*``, ``classifier.*``) with 1 input channel and 18 outputs, so a real
TorchXRayVision state dict loads into it unchanged. Forward is XRV's without op_threshs:
``features -> ReLU -> adaptive average pool -> classifier`` (pre-sigmoid logits).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

GROWTH_RATE = 32
BLOCK_CONFIG = (6, 12, 24, 16)
NUM_INIT_FEATURES = 64
BN_SIZE = 4


class DenseLayer(nn.Sequential):
    """norm1-relu1-conv1(1x1)-norm2-relu2-conv2(3x3, pad 1); output concatenated to the input."""

    def __init__(self, in_features: int):
        super().__init__(
            OrderedDict(
                norm1=nn.BatchNorm2d(in_features),
                relu1=nn.ReLU(),
                conv1=nn.Conv2d(in_features, BN_SIZE * GROWTH_RATE, 1, bias=False),
                norm2=nn.BatchNorm2d(BN_SIZE * GROWTH_RATE),
                relu2=nn.ReLU(),
                conv2=nn.Conv2d(BN_SIZE * GROWTH_RATE, GROWTH_RATE, 3, padding=1, bias=False),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, super().forward(x)], 1)


class Transition(nn.Sequential):
    def __init__(self, in_features: int, out_features: int):
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(in_features),
                relu=nn.ReLU(),
                conv=nn.Conv2d(in_features, out_features, 1, bias=False),
                pool=nn.AvgPool2d(2, stride=2),
            )
        )


class TorchXRVDenseNet(nn.Module):
    """DenseNet-121, 1 input channel, ``num_classes`` outputs; ``forward`` returns (logits, features)."""

    def __init__(self, num_classes: int = 18, in_channels: int = 1):
        super().__init__()
        feats = OrderedDict(
            conv0=nn.Conv2d(in_channels, NUM_INIT_FEATURES, 7, stride=2, padding=3, bias=False),
            norm0=nn.BatchNorm2d(NUM_INIT_FEATURES),
            relu0=nn.ReLU(),
            pool0=nn.MaxPool2d(3, stride=2, padding=1),
        )
        n = NUM_INIT_FEATURES
        for i, n_layers in enumerate(BLOCK_CONFIG, start=1):
            block = nn.Sequential(
                OrderedDict(
                    (f"denselayer{j + 1}", DenseLayer(n + j * GROWTH_RATE)) for j in range(n_layers)
                )
            )
            feats[f"denseblock{i}"] = block
            n += n_layers * GROWTH_RATE
            if i != len(BLOCK_CONFIG):
                feats[f"transition{i}"] = Transition(n, n // 2)
                n //= 2
        feats["norm5"] = nn.BatchNorm2d(n)
        self.features = nn.Sequential(feats)
        self.classifier = nn.Linear(n, num_classes)
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = F.relu(self.features(x))
        features = F.adaptive_avg_pool2d(out, (1, 1)).flatten(1)
        return self.classifier(features), features


@torch.no_grad()
def randomise_(model: TorchXRVDenseNet, seed: int = 0, calib_batches: int = 1) -> TorchXRVDenseNet:
    """Randomise every parameter and BN buffer so parity tests exercise all of them.

    BN affine parameters are random; running stats come from train-mode passes on random
    [-1024, 1024] inputs (keeps activations O(1), as in a trained net) and are then perturbed.
    """
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        c = bn.num_features
        bn.weight.copy_(0.5 + torch.rand(c, generator=gen))
        bn.bias.copy_(0.2 * torch.randn(c, generator=gen))
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    for _ in range(calib_batches):
        model(torch.rand(2, 1, 224, 224, generator=gen) * 2048 - 1024)
    for bn in bns:
        c = bn.num_features
        bn.running_mean.add_(0.05 * bn.running_var.sqrt() * torch.randn(c, generator=gen))
        bn.running_var.mul_(0.9 + 0.2 * torch.rand(c, generator=gen))
        bn.momentum = 0.1
    model.classifier.weight.copy_(0.05 * torch.randn(model.classifier.weight.shape, generator=gen))
    model.classifier.bias.copy_(torch.randn(model.classifier.bias.shape, generator=gen))
    return model.eval()
