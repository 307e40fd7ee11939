"""The README stays true: every command line it shows parses with the real CLI parser, and the
files it links to exist."""

import re
import shlex

import pytest

from compression.cli import build_parser
from compression.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
COMMANDS = [line.split("#")[0].strip() for line in README.splitlines()
            if line.startswith(".venv/bin/python -m compression ")]


def test_the_readme_shows_a_command_of_every_family():
    shown = {shlex.split(c)[3] for c in COMMANDS}
    assert {"zoo", "evaluate", "prune", "distill", "quantize", "architecture", "early-exit",
            "pipeline", "budget", "runs", "report"} <= shown


@pytest.fixture(scope="module")
def parser():
    return build_parser()


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(parser, command):
    argv = shlex.split(command)[3:]
    args = parser.parse_args(argv)  # argparse exits (SystemExit 2) on anything unknown
    assert args.command == argv[0]


@pytest.mark.parametrize("target", sorted(set(re.findall(r"\]\(((?:docs|assets)/[^)#]+)\)", README))))
def test_readme_links_exist(target):
    assert (REPO_ROOT / target).exists(), target
