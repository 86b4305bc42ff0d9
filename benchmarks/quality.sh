#!/usr/bin/env bash
# The sample-quality figures of docs/quality.md: one epoch of the tutorial's spec with the project's defaults, then
# its EMA and raw weights scored with `ddpm eval` (n = 1000 against the 10,000 test images), then the sampler table.
# Then the one-epoch ablation (benchmarks/ablation/*.yaml, compiled into this build only) and clipping on one checkpoint,
# and the one-epoch run continued to six.
# Last, the tutorial's own PyTorch code for the same 469 steps, scored the same way, when DDPM_PYTORCH_REFERENCE names a
# folder holding it (tutorial_quality.py: trains N steps, saves N samples as .npy) and Debian's python3-torch is there.
# Usage: benchmarks/quality.sh [run-folder] [out-folder]     (about 9 h on 2 cores; run it on a quiet machine)
# QUALITY_STAGES picks stages (default: all, in this order): one-epoch clipping ablation samplers ddpm tuned six-epochs
# pytorch. Every stage but ablation and tuned starts from the one-epoch run, which is trained first when it is missing.
set -euo pipefail
all_stages="one-epoch clipping ablation samplers ddpm tuned six-epochs pytorch"
stages=" ${QUALITY_STAGES:-$all_stages} "
for s in $stages; do
  [[ " $all_stages " == *" $s "* ]] || { echo "QUALITY_STAGES: unknown stage '$s' (stages: $all_stages)" >&2; exit 2; }
done
stage() { [[ "$stages" == *" $1 "* ]]; }
cd "$(dirname "$0")/.."
run=${1:-runs/quality-1-epoch}
out=${2:-benchmarks/results/quality}
mkdir -p "$out"
# A copy of the build, so that building again while this runs cannot change the program under it.
dotnet build src/Ddpm.Cli -c Release -v q -nologo -p:DdpmExtraSpecsDir="$PWD/benchmarks/ablation" >/dev/null
bin="$out/ddpm-bin"
rm -rf "$bin" && cp -r src/Ddpm.Cli/bin/Release/net10.0 "$bin"
# The ablation models stay out of the everyday build: rebuild the library without them (an incremental build would not
# notice the removed specs).
dotnet build src/Ddpm.Cli -c Release -v q -nologo --no-incremental >/dev/null
ddpm() { dotnet "$bin/ddpm.dll" "$@"; }
ckpt="$run/checkpoints/last.ckpt"

echo "== data and feature net"
ddpm data fashion-mnist
needs_run=false
for s in one-epoch clipping samplers ddpm six-epochs pytorch; do stage $s && needs_run=true; done
if $needs_run && [ ! -f "$ckpt" ]; then
  echo "== one epoch (468 steps at batch 128), no evaluation during training"
  ddpm train specs/fashion-mnist.yaml --epochs 1 --out "$run" --eval-every 0 --sample-every 0
fi
if stage one-epoch; then
  echo "== EMA vs raw, DPM-Solver++(2M) 20 steps, n = 1000"
  for w in ema raw; do
    ddpm eval "$ckpt" --weights $w --samples 1000 --sampler dpmpp-2m --steps 20 --json "$out/1ep-$w-dpmpp20.json"
  done
fi
if stage clipping; then
  echo "== clipping the predicted x_0 on the raw weights, DPM-Solver++(2M) 20 steps"
  for limit in clip 0.995; do
    ddpm eval "$ckpt" --weights raw --samples 1000 --sampler dpmpp-2m --steps 20 --x0-limit $limit --json "$out/1ep-raw-dpmpp20-x0$limit.json"
  done
fi
if stage ablation; then
  echo "== ablation at one epoch: schedule, objective, min-SNR (each spec trained like the tutorial's)"
  for spec in abl-cosine abl-cosine-v-snr abl-cosine-v; do
    ablation="$(dirname "$run")/$spec"
    [ -f "$ablation/checkpoints/last.ckpt" ] || ddpm train "benchmarks/ablation/$spec.yaml" --epochs 1 --out "$ablation" --eval-every 0 --sample-every 0 --final-samples 0
    for w in ema raw; do
      ddpm eval "$ablation/checkpoints/last.ckpt" --weights $w --samples 1000 --sampler dpmpp-2m --steps 20 --json "$out/$spec-$w-dpmpp20.json"
    done
  done
fi
if stage samplers; then
  echo "== samplers on the EMA weights, n = 1000"
  for s in "ddim 10" "ddim 20" "ddim 50" "ddim 100" "dpmpp-2m 10" "dpmpp-2m-sde 10" "dpmpp-2m-sde 20" "dpmpp-2m-sde 50"; do
    set -- $s
    ddpm eval "$ckpt" --weights ema --samples 1000 --sampler $1 --steps $2 --json "$out/1ep-ema-$1$2.json"
  done
fi
if stage ddpm; then
  echo "== the tutorial's own sampler: DDPM, 300 steps, EMA and raw"
  for w in ema raw; do
    ddpm eval "$ckpt" --weights $w --samples 1000 --sampler ddpm --json "$out/1ep-$w-ddpm300.json" --save-samples "$out/1ep-$w-ddpm300.npy"
  done
fi
if stage tuned; then
  echo "== specs/fashion-mnist-tuned.yaml for one epoch, EMA and raw"
  tuned="$(dirname "$run")/tuned-1-epoch"
  [ -f "$tuned/checkpoints/last.ckpt" ] || ddpm train specs/fashion-mnist-tuned.yaml --epochs 1 --out "$tuned" --eval-every 0 --sample-every 0 --final-samples 0
  for w in ema raw; do
    ddpm eval "$tuned/checkpoints/last.ckpt" --weights $w --samples 1000 --sampler dpmpp-2m --steps 20 --json "$out/tuned-1ep-$w-dpmpp20.json"
  done
fi
if stage six-epochs; then
  echo "== six epochs (the spec's default budget): a copy of the one-epoch run continued with --resume (about 2.5 h here)"
  six="$(dirname "$run")/quality-6-epochs"
  if [ ! -f "$six/checkpoints/last.ckpt" ]; then rm -rf "$six" && cp -r "$run" "$six"; fi
  ddpm train specs/fashion-mnist.yaml --epochs 6 --out "$six" --resume --eval-every 0 --sample-every 0 --final-samples 0
  for s in "dpmpp-2m 20" "dpmpp-2m-sde 20"; do
    set -- $s
    for w in ema raw; do
      ddpm eval "$six/checkpoints/last.ckpt" --weights $w --samples 1000 --sampler $1 --steps $2 --json "$out/6ep-$w-$1$2.json"
    done
  done
fi
reference=${DDPM_PYTORCH_REFERENCE:-}
if ! stage pytorch; then
  :
elif [ -n "$reference" ] && [ -f "$reference/tutorial_quality.py" ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "== the tutorial's PyTorch code, 469 steps, 256 samples with 300-step DDPM (about 90 min here)"
  # Debian's torch links netlib BLAS; the reference's helper points it at OpenBLAS if it has one.
  blas=$( [ -f "$reference/pytorch_ref/openblas_env.sh" ] && sh "$reference/pytorch_ref/openblas_env.sh" || true)
  LD_LIBRARY_PATH="$blas" /usr/bin/python3 "$reference/tutorial_quality.py" --steps 469 --samples 256 --out "$out/pytorch"
  ddpm eval "$out/pytorch/samples.npy" --dataset fashion-mnist --json "$out/pytorch-1ep-ddpm300.json"
  # This project at the same n: the first 256 images of each DDPM draw above.
  ddpm eval "$out/1ep-ema-ddpm300.npy" --dataset fashion-mnist --count 256 --json "$out/1ep-ema-ddpm300-n256.json"
  ddpm eval "$out/1ep-raw-ddpm300.npy" --dataset fashion-mnist --count 256 --json "$out/1ep-raw-ddpm300-n256.json"
else
  echo "== skipped the PyTorch reference: set DDPM_PYTORCH_REFERENCE to its folder and install python3-torch"
fi
