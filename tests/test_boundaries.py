"""The core is a library: importing it never pulls in streamlit."""

import subprocess
import sys

from compression.paths import REPO_ROOT as ROOT


def test_core_does_not_import_streamlit():
    code = ("import importlib, pkgutil, sys, compression, compression.commands\n"
            "for m in pkgutil.walk_packages(compression.__path__, 'compression.'):\n"
            "    if m.name != 'compression.__main__': importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.')]\n"
            "assert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
