"""Backbones with a new classification head. Pretrained weights come through torchvision's weights
API; when they cannot be downloaded the error says so and suggests `--no-pretrained`."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torchvision import models

BACKBONES: tuple[str, ...] = ("resnet50", "resnet18", "mobilenet_v3")
CLOUD_DEFAULT_BACKBONE = "resnet50"
FreezeMode = Literal["none", "head", "last-block"]
FREEZE_MODES: tuple[str, ...] = ("none", "head", "last-block")


class PretrainedWeightsUnavailableError(RuntimeError):
    """Raised when torchvision cannot download (or find cached) pretrained weights."""


def _torchvision_model(backbone: str, pretrained: bool) -> nn.Module:
    factories = {
        "resnet50": (models.resnet50, models.ResNet50_Weights.DEFAULT),
        "resnet18": (models.resnet18, models.ResNet18_Weights.DEFAULT),
        "mobilenet_v3": (models.mobilenet_v3_large, models.MobileNet_V3_Large_Weights.DEFAULT),
    }
    if backbone not in factories:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    factory, weights = factories[backbone]
    if not pretrained:
        return factory(weights=None)
    try:
        return factory(weights=weights)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        raise PretrainedWeightsUnavailableError(
            f"could not load pretrained {backbone} weights ({error}). This machine may be offline: "
            "pre-populate the torch hub cache ($TORCH_HOME) or train from scratch with --no-pretrained."
        ) from error


def _replace_head(model: nn.Module, backbone: str, num_classes: int) -> nn.Module:
    if isinstance(model, models.ResNet):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    elif isinstance(model, models.MobileNetV3):
        classifier = model.classifier
        last = classifier[-1]
        assert isinstance(last, nn.Linear)
        classifier[-1] = nn.Linear(last.in_features, num_classes)
    else:
        raise ValueError(f"no head replacement for backbone {backbone!r}")
    return model


def head_parameters_prefixes(backbone: str) -> tuple[str, ...]:
    return ("fc.",) if backbone.startswith("resnet") else ("classifier.",)


def last_block_prefixes(backbone: str) -> tuple[str, ...]:
    return ("layer4.",) if backbone.startswith("resnet") else ("features.16.", "features.15.")


def apply_freeze(model: nn.Module, backbone: str, freeze: str) -> None:
    """`head`: train the head only; `last-block`: the last block plus the head; `none`: everything."""
    if freeze not in FREEZE_MODES:
        raise ValueError(f"unknown freeze mode {freeze!r}; choose one of {', '.join(FREEZE_MODES)}")
    if freeze == "none":
        return
    trainable = head_parameters_prefixes(backbone)
    if freeze == "last-block":
        trainable += last_block_prefixes(backbone)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith(trainable)


def build_model(
    backbone: str, num_classes: int, *, pretrained: bool = False, freeze: str = "none"
) -> nn.Module:
    model = _replace_head(_torchvision_model(backbone, pretrained), backbone, num_classes)
    apply_freeze(model, backbone, freeze)
    return model


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Load a state_dict saved by training (DDP `module.` prefixes are stripped)."""
    cleaned = {key.removeprefix("module."): value for key, value in state_dict.items()}
    model.load_state_dict(cleaned)
    return model
