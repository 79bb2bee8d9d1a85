#!/usr/bin/env bash
# Builds the libFuzzer targets (frame decoders, HTTP parser, the whole http service on a live
# loop) and fuzzes each for the given number of seconds (default 10: the short form CI runs; the
# README gives the long form).
# Any crash, precondition failure or allocation over 64 MiB fails the run; the crashing input
# is left in .build-fuzz/crashes.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-10}"
case "$seconds" in ''|*[!0-9]*) echo "usage: $0 [seconds per decoder]" >&2; exit 2 ;; esac
swift build --scratch-path .build-fuzz --sanitize=fuzzer --product gnet-fuzz-codecs
swift build --scratch-path .build-fuzz --sanitize=fuzzer --product gnet-fuzz-http
mkdir -p .build-fuzz/crashes
targets="line delimiter fixed length-field http http-service"
for codec in $targets; do
    corpus=".build-fuzz/corpus-$codec"
    mkdir -p "$corpus"
    echo "fuzzing $codec for ${seconds}s"
    log=".build-fuzz/fuzz-$codec.log"
    status=0
    binary=.build-fuzz/debug/gnet-fuzz-codecs
    case "$codec" in http*) binary=.build-fuzz/debug/gnet-fuzz-http ;; esac
    SWIFT_BACKTRACE=enable=no GNET_FUZZ_CODEC=$codec "$binary" -max_total_time="$seconds" -malloc_limit_mb=64 \
        -rss_limit_mb=1024 -timeout=10 -artifact_prefix=.build-fuzz/crashes/"$codec"- -print_final_stats=1 "$corpus" \
        >"$log" 2>&1 || status=$?
    grep -E "^(Done|stat::number_of_executed_units)" "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -40 "$log" >&2
        echo "fuzz: the $codec target failed (libFuzzer exit $status); the input is in .build-fuzz/crashes/" >&2
        exit 1
    fi
done
echo "fuzzed $(echo $targets | wc -w) targets ($targets) for ${seconds}s each without a failure"
