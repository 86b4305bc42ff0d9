#!/usr/bin/env python3
"""Loads Ddpm's export into the tutorial's PyTorch Unet with strict=True and compares the outputs (run by hand).

    dotnet test tests/Ddpm.Cli.Tests --filter InteropTests.Export_probe_for_the_pytorch_check
    python3 check_export.py PATH/TO/ddpm_ref.py tests/Ddpm.Cli.Tests/bin/Release/net10.0/interop-probe

The test leaves in the probe folder Ddpm's export of trained TinyTutorialUNet weights (ddpm_export.safetensors and
ddpm_export.pt, each with its .yaml settings) and Ddpm's own output on the fixture input x.npy, t.npy (ddpm_out.f32,
raw little-endian float32). This script reads each file into ddpm_ref.Unet (renaming the resampling convolutions'
keys from the tutorial's layout to the reference module's, see make_fixtures.py), runs PyTorch on the same input and prints
the largest absolute difference; it exits 1 if a file does not load strictly or differs by more than 1e-5.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

from make_fixtures import UNET_ARGS, load_reference, reference_keys

TOLERANCE = 1e-5


def read_safetensors(path):
    """The file by hand (no safetensors package needed): tensors in header order, and the metadata."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64}
    state = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[8 + length + begin:8 + length + end], dtype=np.dtype(dtypes[entry["dtype"]]).newbyteorder("<"))
        state[name] = torch.from_numpy(array.copy()).reshape(entry["shape"])
    return state, metadata


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", help="ddpm_ref.py (or its folder)")
    parser.add_argument("probe", help="the folder the test wrote (bin/<configuration>/net10.0/interop-probe)")
    args = parser.parse_args()
    ref = load_reference(args.reference)
    fixtures = os.path.dirname(os.path.abspath(__file__))
    torch.set_num_threads(1)

    x = torch.from_numpy(np.load(os.path.join(fixtures, "x.npy")))
    t = torch.from_numpy(np.load(os.path.join(fixtures, "t.npy"))).long()
    ddpm_out = torch.from_numpy(np.fromfile(os.path.join(args.probe, "ddpm_out.f32"), dtype="<f4")).reshape(x.shape)

    failed = False
    for name in ("ddpm_export.safetensors", "ddpm_export.pt"):
        path = os.path.join(args.probe, name)
        if name.endswith(".safetensors"):
            state, metadata = read_safetensors(path)
            note = f"metadata model {metadata.get('ddpm.model')}, weights {metadata.get('ddpm.weights')}, step {metadata.get('ddpm.step')}"
        else:
            state, note = torch.load(path), "torch.load"
        model = ref.Unet(**UNET_ARGS)
        # strict: raises on any missing or unexpected key or shape (after the one documented renaming, see make_fixtures.py)
        model.load_state_dict(reference_keys(state), strict=True)
        model.eval()
        with torch.no_grad():
            out = model(x, t)
        diff = (out - ddpm_out).abs().max().item()
        failed |= not diff <= TOLERANCE
        print(f"{name}: {len(state)} tensors loaded strictly ({note}); max abs difference from Ddpm's output {diff:.3e}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s): {'FAILED' if failed else 'ok'} (tolerance {TOLERANCE})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
