"""Convolutions on maps smaller than their kernel: explicit padding keeps the arithmetic and the weights."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from automl_tl_torch.backbones import torchvision_backbones
from automl_tl_torch.model import build_block_stack
from automl_tl_torch.small_input_conv import PrePaddedConv2d, pad_small_inputs, restore_stock_convolutions


@pytest.mark.parametrize("size", [1, 2, 3, 7])
@pytest.mark.parametrize("groups,stride,dilation", [(8, 1, 1), (8, 2, 1), (1, 1, 1), (1, 2, 2)])
def test_prepadded_conv_matches_a_plain_conv_in_values_and_gradients(size, groups, stride, dilation):
    torch.manual_seed(0)
    plain = nn.Conv2d(8, 16 if groups == 1 else 8, 3, stride=stride, padding=dilation, dilation=dilation, groups=groups)
    padded = pad_small_inputs(nn.Sequential(nn.Conv2d(8, plain.out_channels, 3, stride=stride, padding=dilation,
                                                      dilation=dilation, groups=groups)))[0]
    padded.load_state_dict(plain.state_dict())
    assert type(padded) is PrePaddedConv2d
    x = torch.randn(4, 8, size, size)
    x_plain, x_padded = x.clone().requires_grad_(), x.clone().requires_grad_()
    expected, got = plain(x_plain), padded(x_padded)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    expected.square().sum().backward()
    got.square().sum().backward()
    torch.testing.assert_close(x_padded.grad, x_plain.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(padded.weight.grad, plain.weight.grad, rtol=1e-4, atol=1e-5)


def test_only_zero_padded_plain_convolutions_are_converted():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect"),
                          nn.Conv2d(3, 3, 3, padding="same"), nn.Conv2d(3, 3, 3, padding=1))
    pad_small_inputs(model)
    assert [type(m) for m in model] == [nn.Conv2d, nn.Conv2d, nn.Conv2d, PrePaddedConv2d]


def test_backbones_are_built_with_prepadded_convolutions_and_unchanged_state_dicts():
    spec = next(s for s in torchvision_backbones() if s.name == "mobilenet_v2")
    stack = build_block_stack(spec, pretrained=False)
    assert any(isinstance(m, PrePaddedConv2d) for m in stack.modules()), "its 3x3 convolutions should be converted"
    plain = spec.factory(False)
    converted = pad_small_inputs(copy.deepcopy(plain))
    assert list(converted.state_dict()) == list(plain.state_dict())
    converted.load_state_dict(plain.state_dict(), strict=True)
    assert not any(isinstance(m, PrePaddedConv2d) for m in restore_stock_convolutions(converted).modules())
