"""Hostile or foreign archives named like packages: wrong compression, links, devices, ``..`` and absolute paths,
duplicate members, a member whose declared size does not fit, a decompression bomb, bytes after the gzip stream.
Each is refused with one IntegrityError naming the archive and what was wrong, before any member is copied."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
from pathlib import Path

import pytest

from edge.errors import IntegrityError, ModelError
from edge.models import archive, load_model
from edge.models.manage import pack_model, verify_package
from edge.models.package import read_package


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.fixture(scope="module")
def good_tar(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> bytes:
    d = tmp_path_factory.mktemp("hostile")
    return (pack_model(model_dir / "float.onnx", d / "p.tar", name="cnn", version="1")).read_bytes()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


def test_a_good_package_reads_as_tar_and_as_tgz(good_tar: bytes, tmp_path: Path) -> None:
    a = read_package(_write(tmp_path, "p.tar", good_tar))
    b = read_package(_write(tmp_path, "p.tgz", gzip.compress(good_tar)))
    assert a.files == b.files and a.model_name == "float.onnx"


@pytest.mark.parametrize(
    ("name", "make", "said"),
    [
        ("bz.tgz", bz2.compress, "expected a gzip stream .*, got bzip2 data"),
        ("xz.tgz", lzma.compress, "expected a gzip stream .*, got xz data"),
        ("plain.tgz", lambda t: t, r"expected a gzip stream .*, got a plain tar \(\.tar\)"),
        ("gz.tar", gzip.compress, r"expected a plain tar \(\.tar\), got a gzip stream"),
        ("text.tar.gz", lambda t: b"hello, I am not an archive\n" * 40, "expected a gzip stream .*, got unknown data"),
        ("empty.tgz", lambda t: b"", "expected a gzip stream .*, got empty data"),
    ],
)
def test_wrong_compression_is_named(good_tar: bytes, tmp_path: Path, name: str, make, said: str) -> None:
    with pytest.raises(IntegrityError, match=said):
        read_package(_write(tmp_path, name, make(good_tar)))


def test_a_zip_named_tgz_is_refused(good_tar: bytes, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.toml", "schema = 1\n")
    with pytest.raises(IntegrityError, match="got zip data"):
        load_model(_write(tmp_path, "z.tgz", buf.getvalue()))


@pytest.mark.parametrize(
    ("member", "said"),
    [
        (_special("link.onnx", tarfile.SYMTYPE, "/etc/passwd"), "regular files.*'link.onnx'"),
        (_special("hard.onnx", tarfile.LNKTYPE, "manifest.toml"), "regular files.*'hard.onnx'"),
        (_special("dev", tarfile.CHRTYPE), "regular files.*'dev'"),
        (_special("fifo", tarfile.FIFOTYPE), "regular files.*'fifo'"),
        (_special("sub", tarfile.DIRTYPE), "regular files.*'sub'"),
        (("../evil.onnx", b"x"), "flat file names.*'../evil.onnx'"),
        (("/etc/evil", b"x"), "flat file names.*'/etc/evil'"),
        (("a/b.onnx", b"x"), "flat file names.*'a/b.onnx'"),
        (("..", b"x"), "flat file names.*'..'"),
        (("float.onnx", b"again"), "each file once.*'float.onnx' twice"),
    ],
)
@pytest.mark.parametrize("suffix", [".tar", ".tgz"])
def test_hostile_members_are_refused(good_tar: bytes, tmp_path: Path, member, said: str, suffix: str) -> None:
    with tarfile.open(fileobj=io.BytesIO(good_tar)) as t:
        members = [(m.name, t.extractfile(m).read()) for m in t]
    data = _tar([*members, member])
    path = _write(tmp_path, "h" + suffix, data if suffix == ".tar" else gzip.compress(data))
    with pytest.raises(IntegrityError, match=said):
        verify_package(path)


def test_a_member_declaring_more_bytes_than_the_archive_holds(tmp_path: Path) -> None:
    huge = tarfile.TarInfo("model.onnx")
    huge.size = 10 << 30  # 10 GiB declared (a pax size record), no data behind it
    path = _write(tmp_path, "huge.tgz", gzip.compress(_tar([huge])))
    with pytest.raises(IntegrityError, match=r"'model.onnx' declares 10737418240 bytes, the archive holds \d+ after"):
        read_package(path)


def test_a_decompression_bomb_stops_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = gzip.compress(_tar([("zeros.onnx", bytes(8 << 20))]))  # 8 MiB of zeros in ~8 KiB
    assert len(bomb) < 64 << 10
    monkeypatch.setattr(archive, "MAX_TAR_BYTES", 1 << 20)
    inflated: list[int] = []
    real = archive.zlib.decompressobj

    class Counting:
        def __init__(self, *a, **k) -> None:
            self._d = real(*a, **k)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._d.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name: str):
            return getattr(self._d, name)

    monkeypatch.setattr(archive.zlib, "decompressobj", Counting)
    with pytest.raises(IntegrityError, match=r"at most 1048576 bytes inside the gzip stream, got more.*bomb"):
        read_package(_write(tmp_path, "bomb.tgz", bomb))
    assert sum(inflated) <= (1 << 20) + archive._STEP  # inflating stopped within one step of the limit


def test_bytes_after_the_gzip_stream_are_refused(good_tar: bytes, tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="end with its gzip stream, got 5 more bytes"):
        read_package(_write(tmp_path, "tail.tgz", gzip.compress(good_tar) + b"extra"))
    with pytest.raises(IntegrityError, match="end with its gzip stream"):  # a second gzip member
        read_package(_write(tmp_path, "two.tgz", gzip.compress(good_tar) + gzip.compress(b"")))


@pytest.mark.parametrize("name", ["nosuch.tgz", "nosuch.tar", "nosuch.onnx", "nosuch_folder"])
def test_a_missing_file_says_it_is_missing(tmp_path: Path, name: str) -> None:
    with pytest.raises(ModelError, match=r"nosuch\S*: no such file or folder"):
        load_model(tmp_path / name)
    with pytest.raises(ModelError, match=r"nosuch\S*: no such file or folder"):
        verify_package(tmp_path / name)


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda m: m.replace(b"[model]", b"model = 3\n[mode]"), r"expected \[model\] to be a table"),
        (lambda m: m.replace(b'format = "onnx"', b'format = "onyx"'), r"format \(onnx or tflite\).*'onyx'"),
        (lambda m: m.replace(b"[files]", b"[filez]"), r"\[files\] table"),
        (lambda m: b"inputs = 1\n" + m.replace(b"[[inputs]]", b"[[x]]"), r"\[\[inputs\]\] to be an array of tables"),
        (lambda m: b'preprocess = "x"\n' + m.replace(b"[preprocess]", b"[y]"), r"\[preprocess\] to be a table"),
        (lambda m: b"\xff\xfe" + m, "UnicodeDecodeError"),
        (lambda m: m + b"[model\n", "TOMLDecodeError"),
    ],
)
def test_a_malformed_manifest_is_refused(good_tar: bytes, tmp_path: Path, edit, said: str) -> None:
    with tarfile.open(fileobj=io.BytesIO(good_tar)) as t:
        members = [(m.name, t.extractfile(m).read()) for m in t]
    members = [(n, edit(b) if n == "manifest.toml" else b) for n, b in members]
    with pytest.raises(IntegrityError, match=said):
        read_package(_write(tmp_path, "m.tar", _tar(members)))
