#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: every cargo-fuzz target of fuzz/ into $OUT, as OSS-Fuzz's Rust
# projects do, with
#   $OUT/<target>              the libFuzzer binary (cargo fuzz build -O; the sanitizer is
#                              cargo-fuzz's default, address; base-builder's RUSTFLAGS add
#                              --cfg fuzzing and frame pointers)
#   $OUT/<target>.dict         the libFuzzer dictionary (parser: fuzz/iptables.dict)
#   $OUT/<target>_seed_corpus.zip  seeds from scripts/fuzz-seeds (corpus/, and ../shared/corpus
#                              when it is beside the repository), else corpus/'s rulesets
#   $OUT/lib/libz3.so*         the Z3 library the targets link against: the runner image has no
#                              libz3, so the binaries look for it next to themselves ($ORIGIN/lib)
# Runs in the base-builder-rust image ($SRC, $OUT, $WORK set, the working directory is the
# repository). To run it elsewhere set SRC, OUT and WORK and run it from the repository; it needs
# cargo-fuzz, and builds with the toolchain there is (on stable with RUSTC_BOOTSTRAP=1, as
# scripts/fuzz-smoke does; README: "ClusterFuzzLite").
repo="$(cd "$(dirname "$0")/.." && pwd)"
[ -d "$repo/fuzz" ] || repo="$SRC/sidecar-verify"
cd "$repo/fuzz"

# Look for shared libraries in $OUT/lib first; `$ORIGIN` is for the dynamic loader, not the shell.
export RUSTFLAGS="${RUSTFLAGS:-} -Clink-arg=-Wl,-rpath,\$ORIGIN/lib"
# OSS-Fuzz's cargo is nightly already; a stable one accepts cargo-fuzz's -Z flags with
# RUSTC_BOOTSTRAP=1 (no other toolchain is fetched).
cargo_fuzz=(cargo fuzz)
if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi
"${cargo_fuzz[@]}" build -O

triple="${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"
bin_dir="${CARGO_TARGET_DIR:-$repo/fuzz/target}/$triple/release"
mkdir -p "$OUT/lib"
# Seeds: scripts/fuzz-seeds when it is here (rulesets and their tables for the parser, generator
# byte strings for the others); otherwise the rulesets under corpus/ for every target.
seeds="$WORK/seeds"
rm -rf "$seeds"
if [ -x "$repo/scripts/fuzz-seeds" ]; then
  FUZZ_CORPUS="$seeds" "$repo/scripts/fuzz-seeds"
fi
for t in $("${cargo_fuzz[@]}" list); do
  cp "$bin_dir/$t" "$OUT/$t"
  mkdir -p "$seeds/$t"
  if [ -z "$(ls -A "$seeds/$t")" ]; then
    (cd "$repo" && find corpus -name '*.rules') | while read -r f; do
      cp "$repo/$f" "$seeds/$t/${f//\//_}"
    done
  fi
  rm -f "$OUT/${t}_seed_corpus.zip"
  (cd "$seeds/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
done
cp "$repo/fuzz/iptables.dict" "$OUT/parser.dict"

# The shared libraries outside the base runner image: libz3 (with its soname link).
ldd "$OUT/parser" "$OUT/smt" | awk '/libz3/ { print $3 }' | sort -u | while read -r lib; do
  cp -L "$lib" "$OUT/lib/"
done
