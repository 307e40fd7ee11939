"""A zipped image folder kept as a named dataset (compression.datasets_upload): a good zip loads by
its name; malicious zips are refused in one line with nothing written outside the data folder (and
nothing kept inside it)."""

import io
import stat
import zipfile

import pytest

from compression import CompressionError
from compression.data import load_dataset
from compression.datasets_upload import UploadLimits, add_zip, check_name, name_from_file, remove_dataset
from compression.imagefolder import clear_loaded, datasets_dir, uploaded_names


def _png(color=(200, 30, 30)) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), color).save(buf, format="PNG")
    return buf.getvalue()


def _folder_zip(prefix: str = "", extra=()) -> io.BytesIO:
    """train/ and test/ of two classes (under `prefix`), plus (ZipInfo or name, bytes) entries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for split in ("train", "test"):
            for cls, color in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
                for i in range(3):
                    zf.writestr(f"{prefix}{split}/{cls}/{i}.png", _png(color))
        for entry, data in extra:
            zf.writestr(entry, data)
    buf.seek(0)
    return buf


@pytest.fixture(autouse=True)
def _fresh(home):
    clear_loaded()
    yield
    clear_loaded()


def _nothing_left(tmp_path):
    """No file outside the data folder's datasets/, and nothing kept in it (no dataset, no temp folder)."""
    escaped = [p for p in tmp_path.rglob("*") if "escaped" in p.name]
    assert escaped == []
    assert not datasets_dir().exists() or list(datasets_dir().iterdir()) == []


def test_a_good_zip_becomes_a_named_dataset(tmp_path):
    path = add_zip(_folder_zip(prefix="pets/"), "pets")  # one top-level folder: taken as the root
    assert path == datasets_dir() / "pets" and (path / "train" / "cat").is_dir()
    assert uploaded_names() == ["pets"]
    data = load_dataset("pets")
    assert data.classes == ("cat", "dog") and len(data.test) == 6 and data.warnings == ()
    assert load_dataset(f"imagefolder:{path}?size=16").input_shape == (3, 16, 16)
    with pytest.raises(CompressionError, match="exists already"):
        add_zip(_folder_zip(), "pets")
    add_zip(_folder_zip(extra=[("test/cat/extra.png", _png())]), "pets", replace=True)
    clear_loaded()
    assert len(load_dataset("pets").test) == 7
    remove_dataset("pets")
    assert uploaded_names() == []
    with pytest.raises(CompressionError, match="no uploaded dataset named 'pets'"):
        remove_dataset("pets")


def test_file_path_and_macos_leftovers(tmp_path):
    zpath = tmp_path / "My photos (2).zip"
    zpath.write_bytes(_folder_zip(extra=[("__MACOSX/train/cat/._0.png", b"\0\5\0"),
                                         ("train/cat/._0.png", b"\0\5\0")]).getvalue())
    name = name_from_file(zpath.name)
    assert name == "My-photos-2"
    add_zip(zpath, name)
    assert load_dataset(name).warnings == ()  # AppleDouble files are nobody's data: no line for them


@pytest.mark.parametrize("name", ["", "../up", "a/b", "fashion-mnist", "imagefolder:x", "x?size=3", "-x", "a" * 65])
def test_bad_names_are_refused(name):
    with pytest.raises(CompressionError, match="dataset name"):
        check_name(name)


def _link_entry(name: str, target: str):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


MALICIOUS = {
    "traversal": ([("../../escaped.png", _png())], "outside the folder"),
    "traversal inside": ([("train/cat/../../../escaped.png", _png())], "outside the folder"),
    "absolute": ([("/tmp/escaped.png", _png())], "absolute path"),
    "windows absolute": ([("C:\\escaped.png", _png())], "absolute path"),
    "link": ([_link_entry("train/cat/escaped.png", "/etc/passwd")], "is a link"),
    "bomb": ([("train/cat/escaped.png", b"\0" * (20 << 20))], "inflates .* times"),
}


@pytest.mark.parametrize("case", list(MALICIOUS))
def test_malicious_zips_are_refused_and_nothing_is_written(case, tmp_path):
    extra, message = MALICIOUS[case]
    with pytest.raises(CompressionError, match=message) as err:
        add_zip(_folder_zip(extra=extra), "evil")
    assert "\n" not in str(err.value)
    _nothing_left(tmp_path)


def test_total_size_file_count_and_archive_size_limits(tmp_path):
    many = [(f"train/cat/{i}.bin", bytes(range(256)) * 40) for i in range(30)]  # 10 KiB each, barely compressible
    with pytest.raises(CompressionError, match="extracts to .* bytes; the limit is 100,000"):
        add_zip(_folder_zip(extra=many), "big", limits=UploadLimits(max_total_bytes=100_000))
    with pytest.raises(CompressionError, match="entries; the limit is 10"):
        add_zip(_folder_zip(), "many", limits=UploadLimits(max_entries=10))
    with pytest.raises(CompressionError, match="the limit is 1,000"):
        add_zip(_folder_zip(), "large", limits=UploadLimits(max_zip_bytes=1000))
    _nothing_left(tmp_path)


def test_a_size_that_lies_is_caught_while_extracting(tmp_path):
    """An entry whose header says 1 KiB but inflates to 4 MiB (a bomb that passes the declared checks)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/cat/escaped.png", b"\1" * (4 << 20))
    raw = bytearray(buf.getvalue())
    real = (4 << 20).to_bytes(4, "little")
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header and central directory: file_size
        at = raw.find(sig)
        assert raw[at + offset:at + offset + 4] == real
        raw[at + offset:at + offset + 4] = (1024).to_bytes(4, "little")
    with pytest.raises(CompressionError, match="Bad CRC-32|more than its declared"):  # zipfile stops at the
        add_zip(io.BytesIO(bytes(raw)), "liar", limits=UploadLimits(max_ratio=1e9))
    _nothing_left(tmp_path)


def test_not_a_zip_and_not_an_image_folder(tmp_path):
    with pytest.raises(CompressionError, match="not a readable zip file"):
        add_zip(io.BytesIO(b"PK but not really"), "junk")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("photos/a.png", _png())
    with pytest.raises(CompressionError, match="must hold train/<class>/ and test/<class>/ .* found photos"):
        add_zip(buf, "flat")
    _nothing_left(tmp_path)


def test_roles_upload_for_editors_remove_by_the_uploader_or_an_admin():
    """With sign-in (compression.access): a viewer may not upload; an editor may, and may remove
    their own dataset but not another editor's (that takes an admin)."""
    from compression.access import AccessDenied, User, acting_as
    with acting_as(User("viewer@x.org", "viewer")):
        with pytest.raises(AccessDenied, match="uploading a dataset needs the editor role"):
            add_zip(_folder_zip(), "mine")
    assert uploaded_names() == []
    with acting_as(User("ann@x.org", "editor")):
        add_zip(_folder_zip(), "anns")
    with acting_as(User("bob@x.org", "editor")):
        with pytest.raises(AccessDenied, match="removing dataset 'anns' .*belongs to ann@x.org.* needs the admin role"):
            remove_dataset("anns")
        with pytest.raises(AccessDenied, match="replacing dataset 'anns'"):
            add_zip(_folder_zip(), "anns", replace=True)
    with acting_as(User("ann@x.org", "editor")):
        remove_dataset("anns")
    assert uploaded_names() == []
