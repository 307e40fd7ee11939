"""Who is acting, and what their role allows: checked by the functions that act (start a job, store
a run, change or delete one, upload, add a model), not only by hiding buttons.

Without sign-in there is one trusted user: the app's "local" (every action allowed) or, on the
command line, `--user` / the OS user name (the CLI holds the store's credentials: it is trusted
too). With sign-in configured (Streamlit's st.login), the app tells this module who is signed in
through one function (`use_user_source`; tests set it too), and each person has a role from the
roles file the admin writes (`roles_file()`):

    default = "viewer"                        # any other signed-in user (viewer unless set)
    admin  = ["ana@example.com"]
    editor = ["example.com", "bo@partner.org"]  # a bare domain: everyone at it
    viewer = ["board@example.com"]

An address listed by itself wins over its domain. viewer: look, compare, download, open reports;
editor: plus jobs, uploads, keeping runs; manages (rename, tag, hide, delete) the runs they made;
stars any run; admin: everything, on every run and named model. A refusal is one line that says
which role is needed.
"""

from __future__ import annotations

import contextlib
import contextvars
import getpass
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from compression import CompressionError

ROLES = ("viewer", "editor", "admin")
LOCAL = "local"  # the owner of what the app makes without sign-in

# action -> the least role that may do it; "manage" also depends on the owner (see require)
NEEDS = {"view": "viewer", "run jobs": "editor", "store runs": "editor", "upload": "editor",
         "add models": "editor", "star runs": "editor", "share": "editor", "manage": "editor",
         "administer": "admin"}
WORDS = {"run jobs": "starting a job", "store runs": "keeping a run", "upload": "uploading a file",
         "add models": "adding a model", "star runs": "starring a run", "share": "making a share link",
         "administer": "this", "view": "this page"}


class AccessDenied(CompressionError):
    """An action the acting user's role does not allow (one line: the role needed)."""


@dataclass(frozen=True)
class User:
    name: str                   # the signed-in e-mail, "local", or the CLI's user name; "" when not signed in
    role: str | None            # viewer | editor | admin; None: not signed in (may look at nothing)
    trusted: bool = False       # local mode or the command line: every action allowed, any server path

    @property
    def signed_in(self) -> bool:
        return bool(self.name) and self.role is not None

    def describe(self) -> str:
        if self.trusted:
            return f"{self.name} (local mode)" if self.name == LOCAL else self.name
        return f"{self.name} ({self.role})" if self.signed_in else "not signed in"


LOCAL_USER = User(LOCAL, "admin", trusted=True)
NOBODY = User("", None)

_acting: contextvars.ContextVar[User | None] = contextvars.ContextVar("compression_acting_user", default=None)
_source: Callable[[], User | None] | None = None
_cli_name: str | None = None


def current_user() -> User:
    """Who is acting: the user set for this thread (`acting_as`: a job's worker acts for the session
    that started it), else the app's signed-in user (`use_user_source`), else the command line's."""
    user = _acting.get()
    if user is None and _source is not None:
        user = _source()
    return user if user is not None else cli_user()


def use_user_source(source: Callable[[], User | None] | None):
    """Set the one function the app reads its user through (ui.auth; tests set their own); returns
    the previous one. None from it means: not in the app (the command line's user)."""
    global _source
    previous, _source = _source, source
    return previous


@contextlib.contextmanager
def acting_as(user: User) -> Iterator[User]:
    token = _acting.set(user)
    try:
        yield user
    finally:
        _acting.reset(token)


def set_cli_user(name: str | None) -> None:
    """The command line's `--user` (None: the OS user name)."""
    global _cli_name
    if name is not None:
        name = name.strip()
        if not name or len(name) > 254 or any(c.isspace() for c in name):
            raise CompressionError(f"--user {name!r}: expected one word (an e-mail or a user name), at most 254 characters")
    _cli_name = name


def cli_user() -> User:
    name = _cli_name or os.environ.get("COMPRESSION_USER", "").strip()
    if not name:
        try:
            name = getpass.getuser()
        except Exception:  # no login name (a container without one)
            name = LOCAL
    return User(name, "admin", trusted=True)


# ---------------------------------------------------------------------------------------------
# the roles file

def roles_file() -> Path:
    """$COMPRESSION_ROLES, else roles.toml in the data folder."""
    from compression.paths import home_dir
    text = os.environ.get("COMPRESSION_ROLES", "").strip()
    return Path(text) if text else home_dir() / "roles.toml"


@dataclass(frozen=True)
class Roles:
    default: str = "viewer"
    addresses: tuple[tuple[str, str], ...] = ()   # (lower-case e-mail, role)
    domains: tuple[tuple[str, str], ...] = ()     # (lower-case domain, role)

    def role_for(self, email: str) -> str:
        email = email.strip().lower()
        best = None
        for address, role in self.addresses:
            if address == email:
                best = _higher(best, role)
        if best is not None:
            return best
        domain = email.rpartition("@")[2]
        for d, role in self.domains:
            if d == domain:
                best = _higher(best, role)
        return best or self.default


def _higher(a: str | None, b: str) -> str:
    return b if a is None or ROLES.index(b) > ROLES.index(a) else a


def parse_roles(text: str, where: str = "roles file") -> Roles:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CompressionError(f"{where}: not TOML ({exc})") from None
    default = data.pop("default", "viewer")
    if default not in ROLES:
        raise CompressionError(f"{where}: default = {default!r}; expected one of {', '.join(ROLES)}")
    addresses, domains = [], []
    for key, entries in data.items():
        if key not in ROLES:
            raise CompressionError(f"{where}: unknown key {key!r}; expected default, {', '.join(ROLES)}")
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise CompressionError(f"{where}: {key} = {entries!r}; expected a list of e-mail addresses and domains")
        for entry in entries:
            e = entry.strip().lower().lstrip("@")
            if not e or any(c.isspace() for c in e) or e.count("@") > 1:
                raise CompressionError(f"{where}: {key}: {entry!r} is neither an e-mail address nor a domain")
            (addresses if "@" in e else domains).append((e, key))
    return Roles(default, tuple(addresses), tuple(domains))


_roles_cache: dict[str, tuple[float, Roles]] = {}


def load_roles(path: Path | None = None) -> Roles:
    """The roles file (re-read when it changes); no file: everyone signed in is a viewer."""
    path = path or roles_file()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return Roles()
    cached = _roles_cache.get(str(path))
    if cached is None or cached[0] != mtime:
        cached = _roles_cache[str(path)] = (mtime, parse_roles(path.read_text(encoding="utf-8"), str(path)))
    return cached[1]


def signed_in_user(email: str | None) -> User:
    """The User for a signed-in e-mail (its role from the roles file); None / "": not signed in."""
    if not email:
        return NOBODY
    return User(email.strip(), load_roles().role_for(email))


# ---------------------------------------------------------------------------------------------
# checks

def allowed(action: str, *, owner: str | None = None, user: User | None = None) -> bool:
    try:
        require(action, owner=owner, user=user)
    except AccessDenied:
        return False
    return True


def require(action: str, *, owner: str | None = None, what: str | None = None, user: User | None = None) -> User:
    """The acting user, if their role allows `action` (a key of NEEDS); else AccessDenied, one line.
    "manage" (rename, tag, hide, delete a run; remove a named model or dataset) needs the editor
    role for what the user owns (`owner`), admin for anyone else's."""
    user = user or current_user()
    if action not in NEEDS:
        raise ValueError(f"unknown action {action!r}")
    if user.trusted:
        return user
    need = NEEDS[action]
    doing = what or WORDS.get(action, action)
    if not user.signed_in:
        raise AccessDenied(f"{doing} needs the {need} role: sign in first")
    if action == "manage" and owner is not None and owner != user.name:
        need = "admin"
        doing = f"{doing} (it belongs to {owner})"
    if ROLES.index(user.role) < ROLES.index(need):
        raise AccessDenied(f"{doing} needs the {need} role; you are {user.name} ({user.role})")
    return user


# ---------------------------------------------------------------------------------------------
# the server's files: data roots

REFUSED_FOLDER = "is not an allowed data folder (the admin lists them in COMPRESSION_DATA_ROOTS)"


def data_roots() -> list[Path]:
    """$COMPRESSION_DATA_ROOTS (absolute paths separated by os.pathsep) plus uploaded datasets
    ($COMPRESSION_HOME/datasets), as written (absolute)."""
    from compression.paths import home_dir
    roots = [Path(p.strip()).expanduser() for p in os.environ.get("COMPRESSION_DATA_ROOTS", "").split(os.pathsep)
             if p.strip()]
    roots.append(home_dir() / "datasets")
    return [r.absolute() for r in roots]


def check_data_folder(path: str | Path, *, user: User | None = None) -> Path:
    """The folder, if the acting user may read it. Trusted users (local mode, the CLI): any path.
    With sign-in: only inside a data root; `..` and links that leave a root are refused. Any other
    path gets the same one line whether it exists or not (nothing about the server's files leaks)."""
    user = user or current_user()
    p = Path(path).expanduser()
    if user.trusted:
        return p
    refused = AccessDenied(f"{str(path)!r} {REFUSED_FOLDER}")
    if not p.is_absolute() or ".." in p.parts:
        raise refused
    resolved = p.resolve()  # follows links: a link out of a root lands outside it
    for root in data_roots():
        real = root.resolve()  # a root may itself be a link (/data -> /mnt/data)
        if (p.is_relative_to(root) or p.is_relative_to(real)) and resolved.is_relative_to(real):
            return resolved
    raise refused
