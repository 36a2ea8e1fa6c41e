#!/usr/bin/env bash
# Build and install git-sops from this checkout, run it once, and register its git
# drivers globally (`git sops install --global`).
#   ./install.sh            installs into ~/.cargo/bin (cargo's default)
#   PREFIX=/usr/local ./install.sh   installs into $PREFIX/bin
# Needs a Rust toolchain (https://rustup.rs); nothing else.
set -euo pipefail
cd "$(dirname "$0")"
args=(install --path . --locked --force)
if [ -n "${PREFIX:-}" ]; then args+=(--root "$PREFIX"); fi
cargo "${args[@]}"
bin="${PREFIX:-${CARGO_HOME:-$HOME/.cargo}}/bin"
case ":$PATH:" in *":$bin:"*) ;; *) echo "note: add $bin to your PATH" >&2 ;; esac
"$bin/git-sops" --version
# Register the git drivers for every repository (~/.gitconfig); `git sops init`
# then only has to mark which files are secret.
PATH="$bin:$PATH" "$bin/git-sops" install --global
echo "installed: $bin/git-sops  (run it as \`git sops ...\`; in a repository: \`git sops init\`)"
