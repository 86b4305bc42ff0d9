#!/usr/bin/env bash
# The load figures of docs/serving.md: ddpm serve answering 64-image DPM-Solver++ (dpmpp-2m) 20-step requests on the
# TorchSharp backend (a run's checkpoint) and the ONNX backend (an exported .onnx in the folder), with 1, 4 and 16
# concurrent clients (curl, xargs -P), and the server's resident memory after 10 requests and after TOTAL.
# Usage: benchmarks/serve-load.sh RUNS_FOLDER RUN ONNX_MODEL [TOTAL] [OUT]
#   RUN: a run folder's name in RUNS_FOLDER (its checkpoints/last.ckpt is sampled);
#   ONNX_MODEL: the .onnx file's path inside RUNS_FOLDER (ddpm export CKPT --out RUNS_FOLDER/RUN/model.onnx).
# CELLS="clients:requests ..." sets the requests of each concurrency (default "1:4 4:8 16:16"); the requests past the
# table's, up to TOTAL, ask for TOPUP_COUNT images each (default 64; fewer to reach TOTAL sooner on a small machine).
# Run it alone on a quiet machine: the figures are the machine's, all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:?give the runs folder}
run=${2:?give the run to sample}
onnx=${3:?give the .onnx model path inside the runs folder}
total=${4:-500}
out=${5:-benchmarks/results/serve-load}
cells=${CELLS:-1:4 4:8 16:16}
topup_count=${TOPUP_COUNT:-64}
mkdir -p "$out"
dotnet build src/Ddpm.Cli -c Release -v q -nologo >/dev/null

# The queue holds every client's request: the figures measure throughput and latency, not 503s.
log="$out/server.log"
dotnet src/Ddpm.Cli/bin/Release/net10.0/ddpm.dll serve "$runs" --port 0 --queue 16 >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 300); do grep -q ' at http' "$log" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$log" | head -1)
[ -n "$url" ] || { echo "the server did not start:" >&2; cat "$log" >&2; exit 1; }
echo "server $server at $url; $(nproc) cores; cells (clients:requests) $cells; top-up requests of $topup_count images"

sent=0
body() { # backend seed [count]
  if [ "$1" = torch ]; then printf '{"count":%d,"sampler":"dpmpp-2m","steps":20,"seed":%d}' "${3:-64}" "$2"
  else printf '{"model":"%s","count":%d,"sampler":"dpmpp-2m","steps":20,"seed":%d}' "$onnx" "${3:-64}" "$2"; fi
}
endpoint() { if [ "$1" = torch ]; then echo "${url}api/runs/$run/sample"; else echo "${url}api/onnx/sample"; fi; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; } # KiB

# One request: prints "http_code seconds"; a non-200 is counted as an error by the caller.
export -f body endpoint
export url run onnx
one() { # backend seed [count]
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H 'Content-Type: application/json' --data "$(body "$1" "$2" "${3:-64}")" "$(endpoint "$1")"
}
export -f one

# cell backend clients requests [count]: requests/s, median and p99 latency, errors.
cell() {
  local backend=$1 clients=$2 n=$3 count=${4:-64} start end file="$out/$1-c$2-n$3-i${4:-64}.txt"
  start=$(date +%s.%N)
  seq "$((sent + 1))" "$((sent + n))" | xargs -P "$clients" -I{} bash -c 'one "$0" "$1" "$2"' "$backend" {} "$count" >"$file"
  end=$(date +%s.%N)
  sent=$((sent + n))
  sort -k2 -g "$file" | awk -v b="$backend" -v c="$clients" -v n="$n" -v k="$count" -v t="$(echo "$end - $start" | bc)" '
    { lat[NR] = $2; if ($1 != 200) err++ }
    END {
      med = NR % 2 ? lat[(NR + 1) / 2] : (lat[NR / 2] + lat[NR / 2 + 1]) / 2
      i = int(0.99 * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
      printf "| %s | %d | %d | %d | %.3f | %.2f | %.2f | %.1f | %d |\n", b, c, n, k, n / t, med, lat[i], t, err + 0
    }' | tee -a "$out/table.md"
}

# Warm-up, 10 requests: each backend loads its model, two at once so that each worker has its instance.
cell torch 2 2 >/dev/null
cell onnx 2 2 >/dev/null
cell torch 2 3 >/dev/null
cell onnx 2 3 >/dev/null
rss10=$(rss)
echo "rss after $sent requests: $rss10 KiB"

echo "| backend | clients | requests | images each | requests/s | median s | p99 s | wall s | errors |" | tee "$out/table.md"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |" | tee -a "$out/table.md"
for backend in onnx torch; do
  for c in $cells; do cell "$backend" "${c%%:*}" "${c##*:}"; done
done

# Up to TOTAL requests, both backends in turn, 4 clients, for the memory reading.
left=$((total - sent))
if [ "$left" -gt 0 ]; then
  half=$((left / 2))
  cell onnx 4 "$half" "$topup_count"
  cell torch 4 "$((left - half))" "$topup_count"
fi
rssN=$(rss)
echo "rss after $sent requests: $rssN KiB ($(echo "scale=1; ($rssN - $rss10) * 100 / $rss10" | bc)% from $rss10 KiB after 10)" | tee "$out/memory.txt"
