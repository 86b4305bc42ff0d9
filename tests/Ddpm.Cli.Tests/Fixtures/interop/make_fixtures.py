#!/usr/bin/env python3
"""Writes the PyTorch fixtures of the interop tests (InteropTests.cs), from the tutorial's own module definitions.

Run by hand with a Python that has PyTorch (never by the tests or CI):

    python3 make_fixtures.py PATH/TO/ddpm_ref.py [--out FOLDER]

It imports the reference implementation given as the argument (not copied here), builds the tiny U-Net that
matches the tests' TinyTutorialUNet (TinyModel.cs) shape for shape, gives every tensor seeded non-trivial values,
and writes its state dict under the tutorial's keys (see tutorial_keys) to FOLDER (default: beside this script):

    tiny_tutorial.pt           the state dict, torch.save (PyTorch's zip pickle format)
    tiny_tutorial.safetensors  the same state dict as safetensors (written here; no safetensors package needed)
    x.npy, t.npy               a fixed input: images [2, 1, 8, 8] float32 and timesteps [2] (float32 holding integers)
    out.npy                    the module's output on that input, float32 [2, 1, 8, 8]
"""
import argparse
import importlib.util
import json
import os
import re
import struct
import sys

import numpy as np
import torch

# TinyTutorialUNet: Channels 1, ImageSize 8, Dim 4, DimMults [1, 2], ResnetBlockGroups 4. The reference Unet builds
# its attention with the tutorial's fixed 4 heads x 32 channels, so the C# model declares those too.
UNET_ARGS = dict(dim=4, dim_mults=(1, 2), channels=1, resnet_block_groups=4)
SEED = 20240611


def load_reference(path):
    if os.path.isdir(path):
        path = os.path.join(path, "ddpm_ref.py")
    spec = importlib.util.spec_from_file_location("ddpm_ref", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The reference implementation wraps the convolution of its Downsample and Upsample modules as `conv`
# (downs.0.3.conv.weight); the tutorial builds them as nn.Sequential(rearrange or upsample, conv), so the convolution is
# `1` (downs.0.3.1.weight), and Ddpm's generated modules follow the tutorial. Every other key is the same.
RESAMPLE_CONV = re.compile(r"^(downs|ups)\.(\d+)\.3\.conv\.")
RESAMPLE_TUTORIAL = re.compile(r"^(downs|ups)\.(\d+)\.3\.1\.")


def tutorial_keys(state):
    """The reference module's state dict under the tutorial's keys."""
    return {RESAMPLE_CONV.sub(r"\1.\2.3.1.", k): v for k, v in state.items()}


def reference_keys(state):
    """A state dict with the tutorial's keys under the reference module's keys (the inverse of tutorial_keys)."""
    return {RESAMPLE_TUTORIAL.sub(r"\1.\2.3.conv.", k): v for k, v in state.items()}


def write_safetensors(path, state):
    """safetensors: u64 little-endian header length, the JSON header, then the raw little-endian bytes."""
    header, blobs, offset = {}, [], 0
    for name, tensor in state.items():
        data = tensor.detach().contiguous().cpu().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt", "source": "make_fixtures.py"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad the header to 8 bytes, as the safetensors library does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", help="ddpm_ref.py (or its folder)")
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    ref = load_reference(args.reference)

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    model = ref.Unet(**UNET_ARGS)
    with torch.no_grad():
        # Away from the initial values (GroupNorm 1 and 0, zero biases), so every tensor is checked.
        for tensor in model.state_dict().values():
            tensor.add_(torch.randn(tensor.shape) * 0.1)
    model.eval()

    x = torch.randn(2, 1, 8, 8)
    t = torch.tensor([3, 17], dtype=torch.long)
    with torch.no_grad():
        out = model(x, t)

    os.makedirs(args.out, exist_ok=True)
    state = tutorial_keys(model.state_dict())
    model.load_state_dict(reference_keys(state), strict=True)  # the renaming loses and adds nothing
    torch.save(state, os.path.join(args.out, "tiny_tutorial.pt"))
    write_safetensors(os.path.join(args.out, "tiny_tutorial.safetensors"), state)
    np.save(os.path.join(args.out, "x.npy"), x.numpy().astype("<f4"))
    np.save(os.path.join(args.out, "t.npy"), t.numpy().astype("<f4"))
    np.save(os.path.join(args.out, "out.npy"), out.numpy().astype("<f4"))

    # The files read back as written.
    again = torch.load(os.path.join(args.out, "tiny_tutorial.pt"))
    assert list(again) == list(state) and all(torch.equal(again[k], state[k]) for k in state)
    print(f"torch {torch.__version__}: {len(state)} tensors, {sum(v.numel() for v in state.values())} values; "
          f"out mean {out.mean().item():.6f} std {out.std().item():.6f}; wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
