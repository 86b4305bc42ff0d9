#!/usr/bin/env bash
# The end-to-end figures of docs/performance.md, back to back in one run on a quiet machine.
# Usage: benchmarks/measure.sh <checkpoint> [out-folder]
set -euo pipefail
cd "$(dirname "$0")/.."
checkpoint=${1:?give a checkpoint, e.g. runs/fashion-mnist/checkpoints/last.ckpt}
out=${2:-benchmarks/results}
mkdir -p "$out"
dotnet build src/Ddpm.Cli -c Release -v q -nologo >/dev/null
ddpm() { dotnet src/Ddpm.Cli/bin/Release/net10.0/ddpm.dll "$@"; }
timed() { local name=$1; shift; /usr/bin/time -v -o "$out/$name.time" dotnet src/Ddpm.Cli/bin/Release/net10.0/ddpm.dll "$@"; }

echo "== training and one sampling step, fp32, default allocator (tcmalloc when bundled)"
ddpm bench specs/fashion-mnist.yaml --steps 10 --json "$out/bench-fp32.json"
echo "== the same on tuned glibc malloc, then on glibc malloc as it is"
DDPM_MALLOC=glibc ddpm bench specs/fashion-mnist.yaml --steps 10 --json "$out/bench-fp32-glibc-tuned.json"
DDPM_MALLOC=default ddpm bench specs/fashion-mnist.yaml --steps 10 --json "$out/bench-fp32-glibc-default.json"
echo "== bf16"
ddpm bench specs/fashion-mnist.yaml --steps 10 --precision bf16 --json "$out/bench-bf16.json"
echo "== batch 32"
ddpm bench specs/fashion-mnist.yaml --steps 10 --batch-size 32 --json "$out/bench-fp32-b32.json"
echo "== full sampling: 64 images, 300 DDPM steps, fp32 then bf16; 50 DDIM steps; fp32 on tuned glibc"
timed sample-fp32 sample "$checkpoint" --out "$out/sample-fp32.png"
timed sample-bf16 sample "$checkpoint" --precision bf16 --out "$out/sample-bf16.png"
timed sample-ddim50 sample "$checkpoint" --sampler ddim --steps 50 --out "$out/sample-ddim50.png"
DDPM_MALLOC=glibc timed sample-fp32-glibc-tuned sample "$checkpoint" --out "$out/sample-fp32-glibc-tuned.png"
grep -H -E "Elapsed|Maximum resident" "$out"/sample-*.time
