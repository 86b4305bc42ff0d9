#!/usr/bin/env bash
# The seed model side by side with its peers and the machine's limit, in one go on one machine (run it on an idle machine):
#   this project's training step and sampling call (TorchSharp), the same network on ONNX Runtime, the tutorial's own
#   PyTorch code (../shared/reference, Debian's python3-torch), and a 2048² sgemm through libtorch as the fp32 peak.
# Prints ms, GFLOP/s and the fraction of the peak for each. Usage: benchmarks/peers.sh [OUT_FOLDER] [REFERENCE_FOLDER]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/ddpm-peers}; reference=${2:-../shared/reference}
mkdir -p "$out"
dotnet build src/Ddpm.Cli -c Release -v q -nologo >/dev/null
ddpm=src/Ddpm.Cli/bin/Release/net10.0/ddpm

echo "== this project (ddpm bench: training step at batch 128, one sampling call at batch 64, ONNX Runtime, sgemm peak)"
$ddpm bench specs/fashion-mnist.yaml --steps 5 --json "$out/bench.json" | tee "$out/bench.txt"

refpy="$reference/pytorch_ref/ddpm_ref.py"
py=${DDPM_REFERENCE_PYTHON:-/usr/bin/python3} # Debian's python, where python3-torch installs
if [ -f "$refpy" ] && ! "$py" -c "import torch" 2>/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian's python3-torch for the reference"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch; } >/dev/null 2>&1 || true
fi
if [ -f "$refpy" ] && "$py" -c "import torch" 2>/dev/null; then
  echo "== the tutorial's PyTorch code (2 threads; Debian's torch on the system BLAS, netlib's on a stock Debian 12)"
  "$py" "$refpy" --flops --bench-train 5 --bench-sample --sample-steps 5 --threads 2 | tee "$out/reference.txt"
  if openblas=$(sh "$reference/pytorch_ref/openblas_env.sh" 2>/dev/null); then
    echo "== the same on OpenBLAS (the reference's openblas_env.sh)"
    LD_LIBRARY_PATH="$openblas" "$py" "$refpy" --bench-train 5 --bench-sample --sample-steps 5 --threads 2 | tee "$out/reference-openblas.txt"
  fi
else
  echo "== the tutorial's PyTorch code: not run (no $refpy or no python3-torch)" | tee "$out/reference.txt"
fi
touch "$out/reference-openblas.txt"

python3 - "$out/bench.json" "$out/reference.txt" "$out/reference-openblas.txt" <<'PY'
import json, re, sys
bench = json.load(open(sys.argv[1]))
ref = open(sys.argv[2]).read()
# The forward pass of the seed model per image, counted by the reference (convolutions, linear layers, matrix products);
# 0.51 GFLOP when the reference could not run (its count for this architecture on 2026-12-06).
m = re.search(r"total=([\d.]+) MFLOP", ref)
forward = float(m.group(1)) * 1e6 if m else 0.51e9
peak = bench["sgemm_peak_gflops"]
train_gflop = 3 * forward * bench["train_batch_size"] / 1e9
call_gflop = forward * bench["sample_batch_size"] / 1e9
rows = [("sgemm 2048², libtorch (the peak)", 2 * 2048**3 / 1e9 / peak * 1e3, peak)]
rows.append(("training step, ddpm (TorchSharp)", bench["train_step_ms"], train_gflop / bench["train_step_ms"] * 1e3))
rows.append(("sampling call, ddpm (TorchSharp)", bench["sampling_step_ms"], call_gflop / bench["sampling_step_ms"] * 1e3))
if bench.get("onnx_sampling_call_ms"):
    rows.append(("sampling call, ONNX Runtime", bench["onnx_sampling_call_ms"], call_gflop / bench["onnx_sampling_call_ms"] * 1e3))
for label, text in (("", ref), (", OpenBLAS", open(sys.argv[3]).read())):
    m = re.search(r"bench-train: .*median=([\d.]+) ms/step", text)
    if m: rows.append((f"training step, tutorial PyTorch{label}", float(m.group(1)), train_gflop / float(m.group(1)) * 1e3))
    m = re.search(r"bench-sample: .*\(([\d.]+) ms/step", text)
    if m: rows.append((f"sampling call, tutorial PyTorch{label}", float(m.group(1)), call_gflop / float(m.group(1)) * 1e3))
print(f"\nCPU: {bench['cpu']['name']} ({' '.join(bench['cpu']['features'])}), {bench['threads']} threads; "
      f"forward {forward / 1e9:.3f} GFLOP per image; training step {train_gflop:.1f} GFLOP, sampling call {call_gflop:.1f} GFLOP")
print(f"{'what':<46} {'ms':>9} {'GFLOP/s':>9} {'of peak':>8}")
for name, ms, gflops in rows:
    print(f"{name:<46} {ms:>9.1f} {gflops:>9.1f} {gflops / peak:>8.0%}")
PY
