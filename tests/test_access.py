"""Who is acting and what their role allows: the roles file, the checks, the data roots."""

import pytest

from compression import CompressionError, access
from compression.access import AccessDenied, User

ROLES = """
default = "viewer"
admin = ["ana@example.com"]
editor = ["example.com", "bo@partner.org"]
viewer = ["board@example.com"]
"""


def test_roles_file_addresses_beat_domains_and_others_get_the_default(tmp_path, monkeypatch):
    path = tmp_path / "roles.toml"
    path.write_text(ROLES)
    monkeypatch.setenv("COMPRESSION_ROLES", str(path))
    role = {e: access.signed_in_user(e).role for e in
            ("ana@example.com", "Ana@Example.com", "cy@example.com", "board@example.com", "bo@partner.org",
             "al@partner.org", "x@elsewhere.net")}
    assert role == {"ana@example.com": "admin", "Ana@Example.com": "admin", "cy@example.com": "editor",
                    "board@example.com": "viewer", "bo@partner.org": "editor", "al@partner.org": "viewer",
                    "x@elsewhere.net": "viewer"}
    path.write_text('default = "editor"\n')  # re-read when the admin changes it
    import os
    os.utime(path, (1, 1))
    assert access.signed_in_user("x@elsewhere.net").role == "editor"
    assert access.signed_in_user(None) == access.NOBODY and not access.NOBODY.signed_in


@pytest.mark.parametrize("text, named", [
    ('default = "boss"', "'boss'"), ('owner = ["a@b.c"]', "'owner'"), ('admin = "a@b.c"', "'a@b.c'"),
    ('editor = ["a b@c.d"]', "'a b@c.d'"), ("admin = [", "not TOML"),
])
def test_a_bad_roles_file_is_named_in_one_line(text, named):
    with pytest.raises(CompressionError, match=named) as refused:
        access.parse_roles(text, "roles.toml")
    assert "\n" not in str(refused.value) and "roles.toml" in str(refused.value)


def test_each_refusal_names_the_role_needed():
    viewer, editor = User("v@x.org", "viewer"), User("e@x.org", "editor")
    with pytest.raises(AccessDenied, match=r"^starting a job needs the editor role; you are v@x.org \(viewer\)$"):
        access.require("run jobs", user=viewer)
    with pytest.raises(AccessDenied, match="^uploading a file needs the editor role: sign in first$"):
        access.require("upload", user=access.NOBODY)
    assert access.require("manage", owner="e@x.org", user=editor) is editor
    with pytest.raises(AccessDenied, match=r"\(it belongs to o@x.org\) needs the admin role"):
        access.require("manage", owner="o@x.org", user=editor)
    assert access.allowed("manage", owner="o@x.org", user=User("a@x.org", "admin"))
    assert access.allowed("administer", user=access.LOCAL_USER)  # local mode: every action


def test_the_acting_user_comes_from_one_source_then_the_command_line(monkeypatch):
    monkeypatch.setenv("COMPRESSION_USER", "build-bot")
    previous = access.use_user_source(None)
    try:
        assert access.current_user() == User("build-bot", "admin", trusted=True)
        access.set_cli_user("ana@example.com")
        assert access.current_user().name == "ana@example.com"
        access.use_user_source(lambda: User("app@x.org", "viewer"))
        assert access.current_user().name == "app@x.org"
        with access.acting_as(User("job@x.org", "editor")):  # a job's thread acts for its session
            assert access.current_user().name == "job@x.org"
        assert access.current_user().name == "app@x.org"
    finally:
        access.use_user_source(previous)
        access.set_cli_user(None)
    with pytest.raises(CompressionError, match="--user 'two words'"):
        access.set_cli_user("two words")


def test_folders_outside_the_data_roots_get_the_same_line_whether_they_exist_or_not(tmp_path, monkeypatch, home):
    root = tmp_path / "data"
    (root / "flowers" / "train").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "escape").symlink_to(tmp_path / "secret")  # a link out of the root
    (root / "inside").symlink_to(root / "flowers")     # a link that stays inside is fine
    monkeypatch.setenv("COMPRESSION_DATA_ROOTS", str(root))
    user = User("e@x.org", "editor")
    assert access.check_data_folder(str(root / "flowers"), user=user) == (root / "flowers").resolve()
    assert access.check_data_folder(str(root / "inside"), user=user) == (root / "flowers").resolve()
    (home / "datasets" / "mine").mkdir(parents=True)  # uploaded datasets are a root too
    assert access.check_data_folder(str(home / "datasets" / "mine"), user=user).name == "mine"
    lines = set()
    for path in ("/etc", "/root/x", "/no/such/folder", str(tmp_path / "secret"), str(root / "escape"),
                 f"{root}/../secret", "relative/path", str(root / "flowers" / ".." / ".." / "secret")):
        with pytest.raises(AccessDenied) as refused:
            access.check_data_folder(path, user=user)
        lines.add(str(refused.value).replace(repr(path), "PATH"))
    assert lines == {f"PATH {access.REFUSED_FOLDER}"}  # one line, the same for all
    assert access.check_data_folder("/etc", user=access.LOCAL_USER).as_posix() == "/etc"  # local mode: any path
