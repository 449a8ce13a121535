#!/usr/bin/env bash
# Runs every fuzz target of Millstream for a bounded time.
#
#   fuzz/run.sh [seconds-per-target] [target...]
#
# Default: 60 seconds per target, every target. Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Each target starts from the committed seeds in
# corpus/<target>/ and grows a working corpus in corpus-run/<target>/ (not committed).
# Memory is capped (-rss_limit_mb, -malloc_limit_mb), so an allocation sized by a hostile
# length field is a finding like a panic. A finding leaves its input in
# artifacts/<target>/; reproduce it with
#   cargo +nightly fuzz run <target> artifacts/<target>/<file>
# and turn it into a regression unit test beside the code it broke.
# What was fuzzed, for how long and what was found: docs/robustness.md.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(log_segment checkpoint_manifest checkpoint_blob csv_reader jsonl_reader parquet_reader produce_input)
fi
# One build of every target (and of make_seeds, with the same flags, so no second build).
cargo +nightly fuzz build -O
if [ ! -d corpus/log_segment ]; then
  "target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release/make_seeds"
fi
status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus-run/$target" "artifacts/$target"
  echo "=== $target: ${seconds}s"
  if ! cargo +nightly fuzz run -O "$target" "corpus-run/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=65536 \
      -timeout=10 -print_final_stats=1 2>&1 | tee "artifacts/$target.log" | grep -E "^(#[0-9]+ *DONE|==[0-9]+==|SUMMARY|stat::number_of_executed_units|Done)" ; then
    :
  fi
  if grep -qE "^(==[0-9]+==ERROR|SUMMARY: libFuzzer|thread .* panicked|ERROR: libFuzzer)" "artifacts/$target.log"; then
    echo "!!! $target found a problem: see artifacts/$target.log and artifacts/$target/"
    status=1
  fi
done
exit $status
