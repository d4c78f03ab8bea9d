"""The SimSiam step of ``ssl_step.py`` in PyTorch eager: what a PyTorch user gets on this CPU.

Pure ``torch.nn`` ResNet-50 in torchvision's layout (bottleneck v1.5: stride on the 3x3 conv;
torchvision's compiled ops do not load beside the CPU torch here, so it is written out), the same
heads as kerassev (projector Dense-BN-ReLU x2 + Dense-BN to 2048, L2 1e-3 as SGD weight decay;
predictor 2048 -> 512 -> 2048), the same symmetric negative-cosine loss with stop-gradient and
SGD (lr 0.02, momentum 0.6). Variants: fp32 or bf16 autocast, NCHW or channels_last.

    .venv/bin/python benchmarks/ssl_step_torch.py --size 224 --batch 32
    .venv/bin/python benchmarks/ssl_step.py --compare-torch     # both, alternating, with the ratio
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn
from torch.nn import functional as F


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + identity)


class ResNet50(nn.Module):
    """torchvision.models.resnet50 without the fc layer: (B, 3, H, W) -> (B, 2048)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        blocks, inplanes = [], 64
        for planes, n, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(n):
                blocks.append(Bottleneck(inplanes, planes, stride if i == 0 else 1))
                inplanes = planes * Bottleneck.expansion
        self.layers = nn.Sequential(*blocks)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return torch.flatten(F.adaptive_avg_pool2d(self.layers(x), 1), 1)


def mlp(dims, *, last_bn):
    mods = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        last = i == len(dims) - 2
        mods.append(nn.Linear(a, b, bias=last and not last_bn))
        if not last or last_bn:
            mods.append(nn.BatchNorm1d(b))
        if not last:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


class SimSiam(nn.Module):
    def __init__(self, dim=2048):
        super().__init__()
        self.encoder = nn.Sequential(ResNet50(), mlp([2048, dim, dim, dim], last_bn=True))
        self.predictor = mlp([dim, 512, dim], last_bn=False)

    def forward(self, x1, x2):
        z1, z2 = self.encoder(x1), self.encoder(x2)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        d = lambda p, z: -F.cosine_similarity(p.float(), z.detach().float(), dim=-1).mean()  # noqa: E731
        return 0.5 * d(p1, z2) + 0.5 * d(p2, z1)


def make_step(size, batch, *, bf16, channels_last, dim=2048):
    """A ``step()`` closure running one SimSiam training step (warm-up is the caller's)."""
    torch.manual_seed(0)
    model = SimSiam(dim)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.6, weight_decay=1e-3)
    views = [torch.randn(batch, 3, size, size).to(memory_format=fmt) for _ in range(2)]

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(*views)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return step


VARIANTS = {  # key: (printed name, make_step options)
    "fp32-nchw": ("torch fp32 NCHW", dict(bf16=False, channels_last=False)),
    "fp32-cl": ("torch fp32 channels_last", dict(bf16=False, channels_last=True)),
    "bf16-cl": ("torch bf16 autocast channels_last", dict(bf16=True, channels_last=True)),
}


def time_steps(step, steps, warmup):
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--variant", choices=sorted(VARIANTS), nargs="+", default=list(VARIANTS))
    p.add_argument("--json", action="store_true", help="one JSON line per variant")
    p.add_argument("--threads", type=int, help="intra-op threads (default: torch's, the cores)")
    p.add_argument("--interop-threads", type=int, help="inter-op threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.interop_threads:
        torch.set_num_interop_threads(args.interop_threads)
    if not args.json:
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for key in args.variant:
        name, kw = VARIANTS[key]
        wall = time_steps(make_step(args.size, args.batch, **kw), args.steps, args.warmup)
        img_s = args.steps * args.batch / wall
        if args.json:
            print(json.dumps({"name": name, "img_s": img_s, "threads": torch.get_num_threads()}))
        else:
            print(f"{name:34s} {img_s:8.2f} img/s", flush=True)


if __name__ == "__main__":
    main()
