"""Hand-written PyTorch references for the networks of the seed tutorials (test oracles).

Each class is written from scratch after one seed document in ``/work/shared/seeds`` and keeps that
seed's attribute names, so its ``state_dict`` keys are the seed's. Submodules are registered in
execution order (as zoo registers them), so weights can also be copied between a reference and a
compiled spec by zipping ``parameters()``; where a seed registers its layers in another order (the
d2l ``Residual`` defines ``conv1, conv2, conv3, bn1, bn2``; seed 001's ``Net`` defines ``conv2``
before ``incep1``), only that order differs, never a key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LeNet(nn.Sequential):
    """LeNet-5 of seed 002 (d2l style): sigmoid, average pooling, padding 2 on the first conv."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(
            nn.Conv2d(1, 6, kernel_size=5, padding=2),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.Sigmoid(),
            nn.Linear(120, 84),
            nn.Sigmoid(),
            nn.Linear(84, num_classes),
        )


def nin_block(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int
) -> nn.Sequential:
    """A NiN block (seed 002's notes, d2l's code): a conv then two 1x1 convs, ReLU after each."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(),
    )


class NiN(nn.Sequential):
    """Network in Network as d2l builds it for FashionMNIST at 224x224 (seed 002's notes)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(
            nin_block(1, 96, kernel_size=11, stride=4, padding=0),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nin_block(96, 256, kernel_size=5, stride=1, padding=2),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nin_block(256, 384, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Dropout(0.5),
            nin_block(384, num_classes, kernel_size=3, stride=1, padding=1),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )


class InceptionA(nn.Module):
    """Seed 001's InceptionA: branches 1x1 (16), 5x5 (24), double 3x3 (24), pool (24) -> 88."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_2 = nn.Conv2d(16, 24, kernel_size=5, padding=2)
        self.branch3x3_1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch3x3_2 = nn.Conv2d(16, 24, kernel_size=3, padding=1)
        self.branch3x3_3 = nn.Conv2d(24, 24, kernel_size=3, padding=1)
        self.branch_pool = nn.Conv2d(in_channels, 24, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3 = self.branch3x3_3(self.branch3x3_2(self.branch3x3_1(x)))
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([branch1x1, branch5x5, branch3x3, branch_pool], dim=1)


class InceptionMNIST(nn.Module):
    """Seed 001's InceptionA MNIST net: conv-pool-relu, inception, twice, then Linear(1408, 10)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.incep1 = InceptionA(in_channels=10)
        self.conv2 = nn.Conv2d(88, 20, kernel_size=5)
        self.incep2 = InceptionA(in_channels=20)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(88 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.mp(self.conv1(x)))
        x = self.incep1(x)
        x = F.relu(self.mp(self.conv2(x)))
        x = self.incep2(x)
        return self.fc(torch.flatten(x, 1))


class ResidualBlock(nn.Module):
    """Seed 001's ResidualBlock, typos fixed: relu(x + conv2(relu(conv1(x)))), 3x3 biased convs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(x + y)


class ResidualMNIST(nn.Module):
    """Seed 001's residual-block MNIST net as intended: rblock2 has 32 channels, forward uses it."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=5)
        self.rblock1 = ResidualBlock(16)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5)
        self.rblock2 = ResidualBlock(32)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.mp(self.conv1(x)))
        x = self.rblock1(x)
        x = F.relu(self.mp(self.conv2(x)))
        x = self.rblock2(x)
        return self.fc(torch.flatten(x, 1))


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """Seed 000's conv3x3: padding 1, no bias."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class NotebookResidualBlock(nn.Module):
    """Seed 000's residual_block: conv-bn-relu-conv-bn-relu, then relu(x + out); biased 1x1 conv3."""

    def __init__(self, in_channels: int, out_channels: int, same_shape: bool = True) -> None:
        super().__init__()
        stride = 1 if same_shape else 2
        self.conv1 = conv3x3(in_channels, out_channels, stride=stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv3 = None if same_shape else nn.Conv2d(in_channels, out_channels, 1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        if self.conv3 is not None:
            x = self.conv3(x)
        return F.relu(x + out)


class NotebookResNet96(nn.Module):
    """Seed 000's notebook ResNet for CIFAR-10 resized to 96x96 (blocks block1..block5)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.block1 = nn.Conv2d(in_channels, 64, 7, 2)
        self.block2 = nn.Sequential(
            nn.MaxPool2d(3, 2),
            NotebookResidualBlock(64, 64),
            NotebookResidualBlock(64, 64),
        )
        self.block3 = nn.Sequential(
            NotebookResidualBlock(64, 128, same_shape=False),
            NotebookResidualBlock(128, 128),
        )
        self.block4 = nn.Sequential(
            NotebookResidualBlock(128, 256, same_shape=False),
            NotebookResidualBlock(256, 256),
        )
        self.block5 = nn.Sequential(
            NotebookResidualBlock(256, 512, same_shape=False),
            NotebookResidualBlock(512, 512),
            nn.AvgPool2d(3),
        )
        self.classifier = nn.Linear(512, num_classes)

    def blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of block1..block5 and of the classifier, in order (the verbose mode)."""
        outputs = []
        for block in (self.block1, self.block2, self.block3, self.block4, self.block5):
            x = block(x)
            outputs.append(x)
        outputs.append(self.classifier(torch.flatten(x, 1)))
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)[-1]


class Residual(nn.Module):
    """d2l's Residual (seeds 002, 003, 004): conv-bn-relu-conv-bn, optional 1x1 conv3, add, relu."""

    def __init__(
        self,
        input_channels: int,
        num_channels: int,
        use_1x1conv: bool = False,
        strides: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            input_channels, num_channels, kernel_size=3, padding=1, stride=strides
        )
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(num_channels)
        self.conv3 = (
            nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
            if use_1x1conv
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return F.relu(y + x)


class TrashNet(nn.Module):
    """Seed 002's TrashNet for CIFAR-10: conv-bn-relu, max-pool 3/1/1, two Residuals, avg-pool."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.mp = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.res1 = Residual(32, 64, use_1x1conv=True, strides=2)
        self.res2 = Residual(64, 64)
        self.ap = nn.AdaptiveAvgPool2d((1, 1))
        self.linarg = nn.Linear(64, num_classes)  # the seed's name for its classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mp(F.relu(self.bn1(self.conv1(x))))
        x = self.res2(self.res1(x))
        return self.linarg(torch.flatten(self.ap(x), 1))


def resnet_block(
    input_channels: int, num_channels: int, num_residuals: int, first_block: bool = False
) -> nn.Sequential:
    """d2l's resnet_block (seeds 003, 004): the first Residual halves H and W unless first_block."""
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blocks.append(Residual(num_channels, num_channels))
    return nn.Sequential(*blocks)


class D2LResNet18(nn.Sequential):
    """d2l's ResNet-18 for FashionMNIST at 1x224x224 (seeds 003, 004): b1..b5, pool, Linear."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__(
            nn.Sequential(
                nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
                nn.BatchNorm2d(64),
                nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            ),
            resnet_block(64, 64, 2, first_block=True),
            resnet_block(64, 128, 2),
            resnet_block(128, 256, 2),
            resnet_block(256, 512, 2),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
            nn.Linear(512, num_classes),
        )


REFERENCES: dict[str, tuple[type[nn.Module], tuple[int, int, int], int]] = {
    "lenet": (LeNet, (1, 28, 28), 61_706),
    "nin": (NiN, (1, 224, 224), 1_992_166),
    "inception_mnist": (InceptionMNIST, (1, 28, 28), 97_298),
    "residual_mnist": (ResidualMNIST, (1, 28, 28), 41_514),
    "notebook_resnet96": (NotebookResNet96, (3, 96, 96), 11_180_682),
    "trashnet": (TrashNet, (3, 32, 32), 133_514),
    "d2l_resnet18": (D2LResNet18, (1, 224, 224), 11_178_378),
}
