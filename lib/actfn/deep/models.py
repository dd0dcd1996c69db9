"""VGG and pre-activation ResNet for 32x32 images, with a choice of activation (seed 000, section 3.2).

Defined the way ``torchvision.models`` does it: VGG from a configuration table, ResNet from blocks.
Every nonlinearity is made by :func:`make_activation`, so the same architecture runs with the
learnable piecewise-linear activation (``"pwl"``) or the ReLU / SiLU baselines.  ``width`` scales
every channel count (1.0 is the usual CIFAR network; the book's CPU default is smaller).
"""
from __future__ import annotations

from torch import nn

from ..activations import REGISTRY, make_module

MODELS = ("vgg11", "vgg13", "vgg16", "resnet10", "resnet18")

VGG_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}
RESNET_BLOCKS = {"resnet10": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2]}


def make_activation(kind: str, channels: int, per_channel: bool = False, num_knots: int = 33) -> nn.Module:
    """The activation layer from the registry (:mod:`actfn.activations`)."""
    if kind not in REGISTRY:
        raise ValueError(f"parameter 'activation' must be one of {tuple(REGISTRY)}, got {kind!r}")
    return make_module(kind, channels, per_channel, num_knots)


def _scaled(c: int, width: float) -> int:
    return max(4, int(round(c * width)))


class VGG(nn.Module):
    """Conv3x3 -> BatchNorm -> activation per entry of the table, max-pool at each "M"."""

    def __init__(self, config: list, in_channels: int = 3, num_classes: int = 10, activation: str = "pwl",
                 per_channel: bool = False, width: float = 1.0):
        super().__init__()
        layers, c = [], in_channels
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = _scaled(v, width)
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       make_activation(activation, out, per_channel)]
            c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)  # 32x32 input, five pools -> 1x1

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class PreActBlock(nn.Module):
    """BN -> activation -> conv3x3 -> BN -> activation -> conv3x3, plus the (projected) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, activation: str, per_channel: bool):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.act1 = make_activation(activation, in_ch, per_channel)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.act2 = make_activation(activation, out_ch, per_channel)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)

    def forward(self, x):
        out = self.act1(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.act2(self.bn2(out)))
        return out + skip


class PreActResNet(nn.Module):
    def __init__(self, blocks: list[int], in_channels: int = 3, num_classes: int = 10, activation: str = "pwl",
                 per_channel: bool = False, width: float = 1.0):
        super().__init__()
        widths = [_scaled(c, width) for c in (64, 128, 256, 512)]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        stages, c = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(PreActBlock(c, w, stride, activation, per_channel))
                c = w
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c)
        self.act = make_activation(activation, c, per_channel)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        out = self.act(self.bn(self.stages(self.stem(x))))
        return self.fc(self.pool(out).flatten(1))


def build_model(name: str, in_channels: int = 3, num_classes: int = 10, activation: str = "pwl",
                per_channel: bool = False, width: float = 1.0) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"parameter 'model' must be one of {MODELS}, got {name!r}")
    if not (isinstance(width, (int, float)) and width > 0):
        raise ValueError(f"parameter 'width' must be a number > 0, got {width!r}")
    make_activation(activation, 1)  # validates the name before any layer is built
    if name in VGG_CONFIGS:
        return VGG(VGG_CONFIGS[name], in_channels, num_classes, activation, per_channel, width)
    return PreActResNet(RESNET_BLOCKS[name], in_channels, num_classes, activation, per_channel, width)


def activation_layers(model: nn.Module) -> list[nn.Module]:
    """The model's activation modules in forward order (layer 0 is closest to the input)."""
    kinds = tuple({type(make_module(name)) for name in REGISTRY})
    return [m for m in model.modules() if isinstance(m, kinds)]
