#!/usr/bin/env bash
# Two equal jobs on one machine: `ddpm bench` alone and two at once, under each OpenMP wait policy, interleaved.
# Usage: benchmarks/contention.sh [OUT_FOLDER] [STEPS]   (run on an otherwise idle machine; about 10 minutes)
# Prints one line per run: policy, solo or pair, training step and sampling step medians (ms).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/ddpm-contention}; steps=${2:-4}
mkdir -p "$out"
dotnet build src/Ddpm.Cli -c Release -v q -nologo >/dev/null
ddpm=src/Ddpm.Cli/bin/Release/net10.0/ddpm
figure() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['train_step_ms'], r['sampling_step_ms'])" "$1"; }
for round in 1 2; do
  for policy in ACTIVE PASSIVE; do
    OMP_WAIT_POLICY=$policy $ddpm bench --steps "$steps" --json "$out/solo-$policy-$round.json" >/dev/null
    echo "$policy solo  round $round: $(figure "$out/solo-$policy-$round.json")"
    OMP_WAIT_POLICY=$policy $ddpm bench --steps "$steps" --json "$out/pair-a-$policy-$round.json" >/dev/null &
    OMP_WAIT_POLICY=$policy $ddpm bench --steps "$steps" --json "$out/pair-b-$policy-$round.json" >/dev/null
    wait
    echo "$policy pair  round $round: $(figure "$out/pair-a-$policy-$round.json") | $(figure "$out/pair-b-$policy-$round.json")"
  done
done
