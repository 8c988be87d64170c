#!/usr/bin/env bash
# The aarch64 check: cross-compiles the frontdesk-nlu crate's tests for
# aarch64-unknown-linux-gnu (release, as ./test builds) and runs them under qemu-user: the
# encoder kernels' unit tests (the NEON micro-kernel on every tile height, its f16 widening,
# the ISA choice) and tests/reference_embeddings.rs (the encoder on NEON against
# sentence-transformers' embeddings). So the NEON path is checked on every CI run without an
# ARM machine. `./test` runs this after the x86 tests; `bash .ci/run` installs what it needs.
#
# Needs: the Rust target (rustup target add aarch64-unknown-linux-gnu), a cross linker and
# C library (Debian: gcc-aarch64-linux-gnu libc6-dev-arm64-cross), qemu-user, and the model
# already in the cache (the x86 model tests fetch it; under emulation it is not fetched).
# Builds into its own target dir, ${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}-aarch64,
# so it never waits on (or holds) the lock of the x86 build's.
set -euo pipefail
cd "$(dirname "$0")/../.."

target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu

missing=()
[ -d "$(rustc --print sysroot)/lib/rustlib/$target/lib" ] \
  || missing+=("the Rust standard library for $target: rustup target add $target")
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 \
  || missing+=("the cross linker aarch64-linux-gnu-gcc: apt-get install gcc-aarch64-linux-gnu")
[ -e "$sysroot/lib/crt1.o" ] && [ -e "$sysroot/lib/libc.so.6" ] \
  || missing+=("the aarch64 C library in $sysroot: apt-get install libc6-dev-arm64-cross")
command -v qemu-aarch64 >/dev/null 2>&1 \
  || missing+=("the user-mode emulator qemu-aarch64: apt-get install qemu-user")
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/cross/aarch64.sh: cannot run the aarch64 (NEON) check; missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "(bash .ci/run installs all of them)" >&2
  exit 1
fi

# The model and the reference embeddings, where the reference test looks for them.
model="${XDG_CACHE_HOME:-$HOME/.cache}/frontdesk/models/all-MiniLM-L6-v2"
for f in model.safetensors tokenizer.json config.json; do
  if [ ! -f "$model/$f" ]; then
    echo "tests/cross/aarch64.sh: no $model/$f: the model must already be in the cache;" \
      "run the x86 model tests first (./test, or: cargo run --release -- nlu <<<hello)," \
      "which fetch it" >&2
    exit 1
  fi
done
reference=../shared/data/minilm/reference.jsonl
if [ ! -f "$reference" ]; then
  echo "tests/cross/aarch64.sh: no $reference: the reference embeddings live in" \
    "../shared/data, next to the repository" >&2
  exit 1
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}-aarch64"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $sysroot"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar

# Only the library's unit tests and the reference test: every encoder pass is emulated.
tests=(-p frontdesk-nlu --release --target "$target" --lib --test reference_embeddings)

start=$(date +%s)
cargo test "${tests[@]}" --no-run
built=$(date +%s)
echo "aarch64: cross build took $((built - start)) s"

# The kernels' unit tests (NEON against plain loops, on every tile height; the ISA choice).
cargo test -p frontdesk-nlu --release --target "$target" --lib -- encoder::kernels::
# The encoder on NEON against the reference embeddings (prints the lowest cosine).
cargo test -p frontdesk-nlu --release --target "$target" --test reference_embeddings \
  -- --nocapture
done_at=$(date +%s)
echo "aarch64: tests under qemu took $((done_at - built)) s" \
  "(build and tests: $((done_at - start)) s)"
