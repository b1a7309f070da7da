#!/usr/bin/env bash
# Runs each fuzz target for SECONDS, one after the other, in one process on one core (the machine is
# shared), and prints a line per target: executions, executions per second, time, corpus size, result.
# The build, the corpus (grown run after run) and any crashing input live under the cache, never here.
# Usage: run.sh SECONDS TARGET...   (cargo-fuzz on PATH; make fuzz sees to it)
set -euo pipefail

seconds=$1
shift
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
cache=${KK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/krakend-kafka}/fuzz
# libFuzzer's instrumentation needs nightly; a machine without one gets the minimal profile.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

summary=() failed=0
for target in "$@"; do
    corpus=$cache/corpus/$target artifacts=$cache/artifacts/$target log=$cache/logs/$target.log
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    inputs=("$corpus") options=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/")
    [[ -d $fuzz_dir/seeds/$target ]] && inputs+=("$fuzz_dir/seeds/$target")
    [[ -f $fuzz_dir/$target.dict ]] && options+=(-dict="$fuzz_dir/$target.dict")
    echo "fuzz: $target for ${seconds}s (log: $log)"
    # libFuzzer's progress lines go to the log only; the rest (a crash's report, the final stats) shows.
    set +e
    cargo +nightly fuzz run --sanitizer none --fuzz-dir "$fuzz_dir" --target-dir "$cache/target" "$target" "${inputs[@]}" -- "${options[@]}" 2>&1 |
        tee "$log" | grep -vE '^(#[0-9]+\s+(NEW|REDUCE|pulse|RELOAD)|\s+NEW_FUNC|".*# Uses: [0-9]+$)'
    status=${PIPESTATUS[0]}
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
    result=ok
    if ((status != 0)); then
        result="FAILED (exit $status: see $log; a crashing input is kept in $artifacts)" failed=1
    fi
    summary+=("$(printf '%-20s %12s runs %8s exec/s %5ss %7s corpus inputs  %s' "$target" "${runs:-?}" "${rate:-?}" \
        "${took:-?}" "$(find "$corpus" -type f | wc -l)" "$result")")
done
printf '\nfuzz summary:\n'
printf '  %s\n' "${summary[@]}"
exit "$failed"
