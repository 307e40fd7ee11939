"""What a user keeps about a stored run besides its numbers: its name, its tags, the group of runs
made together (a sweep, search, budget search or pipeline), and where its artifact file is.
Checked here, at the boundary, with messages that name the bad value (compression.store stores them)."""

from __future__ import annotations

import uuid
from pathlib import Path

from compression import CompressionError
from compression.paths import home_dir

GROUP_KINDS = ("sweep", "search", "budget", "pipeline")
NAME_MAX, TAG_MAX, TAGS_MAX = 80, 32, 20


def artifact_file(path: str | None) -> Path | None:
    """A run's artifact file if it is still on disk: an absolute path, or a relative one as written
    (from the working folder) or under the app's data folder; None otherwise."""
    if not path:
        return None
    p = Path(path)
    for candidate in ([p] if p.is_absolute() else [p, home_dir() / p]):
        if candidate.is_file():
            return candidate
    return None


def new_group_id(kind: str, key: str | None = None) -> str:
    """The group id of runs made together: "<kind>:<key>", the key a short random one unless given
    (a search's study name, so a continued study stays one group)."""
    if kind not in GROUP_KINDS:
        raise CompressionError(f"unknown run group kind {kind!r}; one of {', '.join(GROUP_KINDS)}")
    key = (key or "").strip() or uuid.uuid4().hex[:8]
    return f"{kind}:{key}"


def check_name(name: str) -> str | None:
    """A run's name as stored: stripped, None when empty (the name is cleared)."""
    if not isinstance(name, str):
        raise CompressionError(f"a run name is text, got {name!r}")
    text = name.strip()
    if len(text) > NAME_MAX:
        raise CompressionError(f"run name {text[:40]!r}... is {len(text)} characters; at most {NAME_MAX}")
    if any(ord(c) < 32 for c in text):
        raise CompressionError(f"run name {text!r} has a line break or control character")
    return text or None


def check_tag(tag: str) -> str:
    """One tag as stored (stripped); refused: empty, commas, control characters, too long."""
    if not isinstance(tag, str):
        raise CompressionError(f"a tag is text, got {tag!r}")
    text = tag.strip()
    if not text:
        raise CompressionError(f"empty tag {tag!r}")
    if "," in text:
        raise CompressionError(f"tag {text!r} has a comma; give one tag at a time")
    if len(text) > TAG_MAX:
        raise CompressionError(f"tag {text!r} is {len(text)} characters; at most {TAG_MAX}")
    if any(ord(c) < 32 for c in text):
        raise CompressionError(f"tag {text!r} has a line break or control character")
    return text


def check_tags(tags) -> list[str]:
    """A run's tags: each checked, duplicates dropped (first kept), at most TAGS_MAX."""
    if isinstance(tags, str):
        raise CompressionError(f"tags are a list, got the text {tags!r}")
    out: list[str] = []
    for tag in tags:
        text = check_tag(tag)
        if text not in out:
            out.append(text)
    if len(out) > TAGS_MAX:
        raise CompressionError(f"{len(out)} tags; a run takes at most {TAGS_MAX}")
    return out
