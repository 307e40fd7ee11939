#!/usr/bin/env bash
# Make Fashion-MNIST available: already on disk, else Debian's dataset-fashion-mnist, else
# torchvision's download into ./data (needs the network).
set -eu
PY=${1:-.venv/bin/python}
have() { for d in "${COMPRESSION_DATA:-/nonexistent}" data /usr/share/datasets/fashion-mnist; do
           [ -e "$d/t10k-labels-idx1-ubyte.gz" ] || [ -e "$d/t10k-labels-idx1-ubyte" ] \
             || [ -e "$d/FashionMNIST/raw/t10k-labels-idx1-ubyte" ] && return 0; done; return 1; }
have && exit 0
"$(dirname "$0")/apt-install.sh" dataset-fashion-mnist && have && exit 0
echo "downloading Fashion-MNIST with torchvision into ./data" >&2
"$PY" -c "from compression.data import load_dataset; d = load_dataset('fashion-mnist'); print(f'Fashion-MNIST ready: {d.source}')"
