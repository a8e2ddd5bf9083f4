# Sourced by the scripts: where cargo builds (outside the clone, reused between runs).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/loupe/target}"
export PATH="$HOME/.cargo/bin:$PATH"
