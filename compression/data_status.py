"""Which registered datasets can be used here: installed (files found where compression.data looks),
downloadable on first use (the download host answers), or not installed, with how to install it.
The sidebar offers the usable ones and labels the others, instead of failing on selection."""

from __future__ import annotations

import functools
import os

from compression import CompressionError
from compression.data import _LOADERS, _find_idx_dir, _search_roots

# where torchvision downloads each registered dataset from (to tell "downloads on first use" from
# "not installed" before anyone waits for a download that cannot happen)
_DOWNLOAD_HOSTS = {"fashion-mnist": "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                   "mnist": "ossci-datasets.s3.amazonaws.com", "cifar10": "www.cs.toronto.edu"}
_INSTALL_HINTS = {"fashion-mnist": "sudo apt-get install dataset-fashion-mnist",
                  "mnist": "put the four MNIST IDX files in ./data/mnist (or go online)",
                  "cifar10": "put cifar-10-batches-py in ./data (or go online)"}


def dataset_availability(name: str) -> tuple[bool, str]:
    """(usable here, in words): installed, downloads on first use (its host answers), or not
    installed with how to install it. Cheap: looks for files and opens one connection at most."""
    if name not in _LOADERS:
        return False, f"unknown dataset {name!r}"
    try:
        roots = [root for _, root in _search_roots(f"/usr/share/datasets/{name}")]
    except CompressionError as exc:
        return False, str(exc)
    if name == "cifar10":
        found = any((root / "cifar-10-batches-py").is_dir() for root in roots)
    else:
        found = any(_find_idx_dir(root) is not None for root in roots)
    if found:
        return True, "installed"
    if not os.environ.get("COMPRESSION_OFFLINE") and _reachable(_DOWNLOAD_HOSTS.get(name, "")):
        return True, "downloads on first use"
    return False, f"not installed: {_INSTALL_HINTS.get(name, 'install it')}"


@functools.lru_cache(maxsize=8)
def _reachable(host: str) -> bool:
    import socket
    if not host:
        return False
    try:
        socket.create_connection((host, 443), timeout=1.5).close()
        return True
    except OSError:
        return False
