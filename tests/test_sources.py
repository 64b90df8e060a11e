"""geonox.sources against a real HTTP server on 127.0.0.1 (tests/conftest_http.py) and the
real tarballs in the shared mirror.  No mocks: every fault is produced on the wire.

Nothing here needs the mirror but the test that extracts the real SQLite tarball: where the
mirror is missing the server serves a stand-in archive of that name (conftest_http), and
the model, environment, download and extraction tests run all the same."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import filelock
import pytest
import requests
from conftest import skip_or_fail

from geonox import environment
from geonox.cache import CacheLayout
from geonox.errors import ChecksumError, SourceError, UserError
from geonox.sources import Source, download, extract, fetch, mirror_urls
from geonox.sources import archives as extract_module

try:
    from conftest_http import (
        MIRROR,
        PAYLOADS,
        SQLITE,
        SQLITE_SHA256,
        FaultServer,
        fault_server,
        reset,
        serve,
        sha256_of,
        stall,
        status,
        truncate,
        wait_for,
        wrong_bytes,
    )
except ImportError:  # tests/ made a package
    from tests.conftest_http import (  # noqa: F401
        MIRROR,
        PAYLOADS,
        SQLITE,
        SQLITE_SHA256,
        FaultServer,
        fault_server,
        reset,
        serve,
        sha256_of,
        stall,
        status,
        truncate,
        wait_for,
        wrong_bytes,
    )

REPO = Path(__file__).resolve().parents[1]
PATH = "/" + SQLITE
SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(autouse=True)
def _fast_and_isolated(monkeypatch, tmp_path):
    monkeypatch.setattr(download, "BACKOFF_BASE", 0.01)
    for var in ("GEONOX_MIRROR", "GEONOX_OFFLINE", "GEONOX_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("GEONOX_CACHE_DIR", str(tmp_path / "geonox-cache"))


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "sources"


def sqlite_at(url: str) -> Source:
    return Source(name="sqlite", version="3.52.0", url=url, sha256=SQLITE_SHA256)


def listed(cache_dir: Path) -> list[Path]:
    """What ``cache list`` shows of a sources directory: its complete source entries."""
    return [
        e.path
        for e in CacheLayout(cache_dir.parent).entries()
        if e.kind == "source" and e.path.parent.parent == cache_dir
    ]


def assert_cache_clean(cache_dir: Path) -> list[Path]:
    """Only verified files (hash == directory name), lock files and their directory."""
    verified = []
    if not cache_dir.exists():
        return verified
    for dirpath, _dirnames, filenames in os.walk(cache_dir):
        d = Path(dirpath)
        if d != cache_dir:
            assert d.parent == cache_dir, f"unexpected nested directory {d}"
            assert d.name == ".locks" or SHA_RE.match(d.name), f"unexpected directory {d}"
            assert d.name == ".locks" or filenames, f"empty entry directory left: {d}"
        for name in filenames:
            f = d / name
            if d.name == ".locks":
                assert name.endswith(".lock"), f
                continue
            assert d != cache_dir, f"stray file {f}"
            assert not name.endswith(".part") and not name.startswith("."), f"leftover {f}"
            assert sha256_of(f) == d.name, f"unverified file at a final path: {f}"
            verified.append(f)
    return verified


# ----------------------------------------------------------------- model and env


def test_source_requires_a_valid_sha256():
    for bad in ("", "xyz", "0" * 63, "g" * 64, None):
        with pytest.raises(SourceError, match=r"sha256.*\[tool\.geonox\.sources\.sqlite\]"):
            Source("sqlite", "3.52.0", "https://sqlite.org/2026/" + SQLITE, bad)  # type: ignore[arg-type]
    assert issubclass(SourceError, UserError) and issubclass(ChecksumError, SourceError)
    s = Source("sqlite", "3.52.0", "https://sqlite.org/2026/" + SQLITE, SQLITE_SHA256.upper())
    assert s.sha256 == SQLITE_SHA256 and s.filename == SQLITE


def test_source_needs_a_file_name_in_the_url():
    with pytest.raises(SourceError, match="file name"):
        Source("x", "1", "https://example.org/", SQLITE_SHA256)
    s = Source("x", "1", "https://example.org/a%20b/x-1.tar.gz?download=1", SQLITE_SHA256)
    assert s.filename == "x-1.tar.gz"


def test_mirror_urls_order_and_env(monkeypatch):
    src = sqlite_at("https://sqlite.org/2026/" + SQLITE)
    assert mirror_urls(src, ["http://m1/pub/", "file:///srv/m2", "rel/dir", "/abs/dir/"]) == [
        "http://m1/pub/" + SQLITE,
        "file:///srv/m2/" + SQLITE,
        "rel/dir/" + SQLITE,
        "/abs/dir/" + SQLITE,
        src.url,
    ]
    monkeypatch.setenv("GEONOX_MIRROR", "  http://a/x \n /b  ")
    assert environment.read().mirrors == ("http://a/x", "/b")
    for value, expected in (
        ("1", True),
        ("true", True),
        ("YES", True),
        ("0", False),
        ("", None),
        ("no", False),
    ):
        monkeypatch.setenv("GEONOX_OFFLINE", value)
        assert environment.read().offline is expected


def test_bad_timeout_env_is_a_user_error(monkeypatch, cache_dir):
    monkeypatch.setenv("GEONOX_TIMEOUT", "soon")
    with pytest.raises(UserError, match="GEONOX_TIMEOUT='soon'"):
        fetch(sqlite_at("http://127.0.0.1:9/" + SQLITE), cache_dir=cache_dir)


def test_backoff_is_exponential():
    assert [download.backoff_delay(a, 0.5) for a in (1, 2, 3)] == [0.5, 1.0, 2.0]


# ------------------------------------------------------------------- happy path


def test_download_then_cache_hit(fault_server, cache_dir, capfd):
    src = sqlite_at(fault_server.url(PATH))
    path = fetch(src, cache_dir=cache_dir)
    assert path == cache_dir / SQLITE_SHA256 / SQLITE
    assert sha256_of(path) == SQLITE_SHA256
    assert fault_server.count(PATH) == 1
    err = capfd.readouterr().err
    # Not a TTY: exactly one line per file, when done.
    assert re.fullmatch(
        rf"fetched {re.escape(SQLITE)} \(3\.3 MB\) from "
        rf"{re.escape(src.url)} in \d+\.\d s, sha256 ok\n",
        err,
    ), err

    assert fetch(src, cache_dir=cache_dir) == path
    assert fault_server.count(PATH) == 1  # no network for a cache hit
    assert capfd.readouterr().err == ""
    assert [(p.parent.name, p.name, p.stat().st_size, p) for p in listed(cache_dir)] == [
        (SQLITE_SHA256, SQLITE, (PAYLOADS / SQLITE).stat().st_size, path)
    ]
    assert assert_cache_clean(cache_dir) == [path]


def test_default_cache_dir_is_geonox_cache(fault_server, tmp_path):
    path = fetch(sqlite_at(fault_server.url(PATH)), progress=False)
    assert path == CacheLayout.from_env().sources / SQLITE_SHA256 / SQLITE
    assert str(path).startswith(str((tmp_path / "geonox-cache").resolve()))


def test_progress_false_is_silent(fault_server, cache_dir, capfd):
    fetch(sqlite_at(fault_server.url(PATH)), cache_dir=cache_dir, progress=False)
    assert capfd.readouterr() == ("", "")


def _fetch_cmd(url: str, cache: Path, *extra: str) -> list[str]:
    code = (
        "import sys; from pathlib import Path; from geonox.sources import Source, fetch;"
        "s = Source('sqlite', '3.52.0', sys.argv[1], sys.argv[2]);"
        "print(fetch(s, cache_dir=Path(sys.argv[3])))"
    )
    return [sys.executable, "-c", code, url, SQLITE_SHA256, str(cache), *extra]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_progress_bar_on_a_tty(fault_server, cache_dir):
    import pty

    fault_server.script(PATH, serve(rate=6_000_000))  # ~0.5 s: several redraws
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        _fetch_cmd(fault_server.url(PATH), cache_dir),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    out = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
    os.close(master)
    assert proc.wait(30) == 0
    text = out.decode()
    redraws = [part for part in text.split("\r") if "MB/s" in part or "kB/s" in part]
    assert len(redraws) >= 2, text  # updated in place, on one line
    assert "/ 3.3 MB" in text and "[#" in text
    assert text.count("\n") == 1  # the bar never scrolls; only the summary ends a line
    assert text.rstrip().endswith("sha256 ok"), text


# -------------------------------------------------------------------- bad bytes


def test_wrong_bytes_is_a_checksum_error_and_nothing_is_cached(fault_server, cache_dir):
    fault_server.script(PATH, wrong_bytes())
    src = sqlite_at(fault_server.url(PATH))
    with pytest.raises(ChecksumError) as info:
        fetch(src, cache_dir=cache_dir)
    assert fault_server.count(PATH) == 1  # a mismatch is not retried on the same URL
    actual = hashlib.sha256(requests.get(src.url, timeout=5).content).hexdigest()
    msg = str(info.value)
    assert src.url in msg and f"expected {SQLITE_SHA256}, got {actual}" in msg
    assert "(1 try)" in msg and "[tool.geonox.sources.sqlite]" in msg and "mirror" in msg
    assert len(msg.splitlines()) <= 4
    assert not (cache_dir / SQLITE_SHA256).exists()
    assert assert_cache_clean(cache_dir) == []


def test_wrong_bytes_on_mirror_then_upstream_is_fine(fault_server, cache_dir):
    fault_server.script("/bad-mirror" + PATH, wrong_bytes())
    src = sqlite_at(fault_server.url(PATH))
    path = fetch(src, mirrors=[fault_server.url("/bad-mirror")], cache_dir=cache_dir)
    assert fault_server.count("/bad-mirror" + PATH) == 1 and fault_server.count(PATH) == 1
    assert assert_cache_clean(cache_dir) == [path]


def test_corrupt_cached_file_and_stale_part_are_replaced(fault_server, cache_dir):
    entry = cache_dir / SQLITE_SHA256
    entry.mkdir(parents=True)
    (entry / SQLITE).write_bytes(b"bit rot")
    (entry / f".{SQLITE}.12345.deadbeef.part").write_bytes(b"half a download")
    path = fetch(sqlite_at(fault_server.url(PATH)), cache_dir=cache_dir)
    assert fault_server.count(PATH) == 1
    assert assert_cache_clean(cache_dir) == [path]


# ---------------------------------------------------------------- transient faults


def test_truncated_twice_then_ok(fault_server, cache_dir):
    fault_server.script(PATH, truncate(0.5), truncate(0.9), serve())
    path = fetch(sqlite_at(fault_server.url(PATH)), cache_dir=cache_dir)
    assert fault_server.count(PATH) == 3
    assert assert_cache_clean(cache_dir) == [path]


def test_truncated_always_fails_after_all_tries(fault_server, cache_dir):
    fault_server.script(PATH, truncate(0.5))
    src = sqlite_at(fault_server.url(PATH))
    with pytest.raises(SourceError) as info:
        fetch(src, cache_dir=cache_dir)
    assert not isinstance(info.value, ChecksumError)
    msg = str(info.value)
    assert fault_server.count(PATH) == 4
    assert src.url in msg and "closed before the end of the body" in msg and "(4 tries)" in msg
    assert "1629490 of 3258980 bytes" in msg and "network" in msg
    assert assert_cache_clean(cache_dir) == []


def test_reset_mid_stream_then_ok(fault_server, cache_dir):
    fault_server.script(PATH, reset(0.3), serve())
    path = fetch(sqlite_at(fault_server.url(PATH)), cache_dir=cache_dir)
    assert fault_server.count(PATH) == 2
    assert assert_cache_clean(cache_dir) == [path]


def test_persistent_reset_names_the_tries(fault_server, cache_dir):
    fault_server.script(PATH, reset(0.3))
    src = sqlite_at(fault_server.url(PATH))
    with pytest.raises(SourceError, match=r"connection reset \(4 tries\)") as info:
        fetch(src, cache_dir=cache_dir)
    assert fault_server.count(PATH) == 4 and src.url in str(info.value)
    with pytest.raises(SourceError, match=r"connection reset \(2 tries\)"):
        fetch(src, cache_dir=cache_dir, attempts=2)
    assert fault_server.count(PATH) == 6
    assert assert_cache_clean(cache_dir) == []


def test_500_twice_then_ok(fault_server, cache_dir):
    fault_server.script(PATH, status(500), status(503), serve())
    path = fetch(sqlite_at(fault_server.url(PATH)), cache_dir=cache_dir)
    assert fault_server.count(PATH) == 3
    assert assert_cache_clean(cache_dir) == [path]


def test_mixed_failures_are_summarised(fault_server, cache_dir):
    fault_server.script(PATH, status(500), status(500), reset(0.3))
    with pytest.raises(SourceError) as info:
        fetch(sqlite_at(fault_server.url(PATH)), cache_dir=cache_dir)
    assert "HTTP 500 Internal Server Error x2, then connection reset x2 (4 tries)" in str(
        info.value
    )


def test_429_honours_retry_after_and_backoff_grows(fault_server, cache_dir):
    fault_server.script(PATH, status(429, retry_after=0.4), serve())
    t0 = time.monotonic()
    fetch(sqlite_at(fault_server.url(PATH)), cache_dir=cache_dir)
    assert time.monotonic() - t0 >= 0.4 and fault_server.count(PATH) == 2

    other = "/other" + PATH
    fault_server.script(other, status(502))
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"HTTP 502 Bad Gateway \(3 tries\)"):
        fetch(
            sqlite_at(fault_server.url(other)), cache_dir=cache_dir / "b", attempts=3, backoff=0.15
        )
    assert time.monotonic() - t0 >= 0.15 + 0.3  # 0.15 then 0.3


@pytest.mark.parametrize("code,reason", [(404, "Not Found"), (403, "Forbidden"), (410, "Gone")])
def test_4xx_fails_at_once(fault_server, cache_dir, code, reason):
    fault_server.script(PATH, status(code))
    src = sqlite_at(fault_server.url(PATH))
    with pytest.raises(SourceError) as info:
        fetch(src, cache_dir=cache_dir)
    assert fault_server.count(PATH) == 1
    msg = str(info.value)
    assert f"{src.url}: HTTP {code} {reason} (1 try)" in msg
    assert "check the mirror" in msg.lower() and "[tool.geonox.sources.sqlite]" in msg
    assert assert_cache_clean(cache_dir) == []


@pytest.mark.parametrize("fraction", [0.0, 0.4], ids=["before-headers", "mid-body"])
def test_server_slower_than_read_timeout(fault_server, cache_dir, monkeypatch, fraction):
    monkeypatch.setenv("GEONOX_TIMEOUT", "0.3")
    fault_server.script(PATH, stall(5, fraction=fraction))
    t0 = time.monotonic()
    with pytest.raises(SourceError) as info:
        fetch(sqlite_at(fault_server.url(PATH)), cache_dir=cache_dir, attempts=2)
    assert time.monotonic() - t0 < 3
    assert "timed out after 0.3 s" in str(info.value) and "(2 tries)" in str(info.value)
    assert fault_server.count(PATH) == 2
    assert assert_cache_clean(cache_dir) == []


def test_connection_refused(cache_dir):
    with FaultServer() as gone:
        url = gone.url(PATH)
    with pytest.raises(SourceError, match=r"connection refused \(2 tries\)"):
        fetch(sqlite_at(url), cache_dir=cache_dir, attempts=2)


def test_unknown_host_is_not_called_a_timeout(cache_dir):
    # RFC 2606: .invalid never resolves.  urllib3's NameResolutionError subclasses its
    # timeout errors, which once made this read "timed out after 60 s".
    with pytest.raises(SourceError) as info:
        fetch(sqlite_at("http://geonox-test.invalid" + PATH), cache_dir=cache_dir, attempts=2)
    assert "host not found (DNS) (2 tries)" in str(info.value)
    assert "timed out" not in str(info.value)


# ------------------------------------------------------------------------ mirrors


def test_first_mirror_404_second_serves(fault_server, cache_dir):
    fault_server.script("/m1" + PATH, status(404))
    src = sqlite_at(fault_server.url("/upstream" + PATH))
    path = fetch(
        src, mirrors=[fault_server.url("/m1"), fault_server.url("/m2/")], cache_dir=cache_dir
    )
    assert [fault_server.count(p + PATH) for p in ("/m1", "/m2", "/upstream")] == [1, 1, 0]
    assert assert_cache_clean(cache_dir) == [path]


def test_geonox_mirror_with_two_bases(fault_server, cache_dir, monkeypatch):
    fault_server.script("/m1" + PATH, status(404))
    monkeypatch.setenv("GEONOX_MIRROR", f"{fault_server.url('/m1')}  {fault_server.url('/m2')}")
    src = sqlite_at(fault_server.url("/upstream" + PATH))
    fetch(src, mirrors=environment.read().mirrors, cache_dir=cache_dir)
    assert [fault_server.count(p + PATH) for p in ("/m1", "/m2", "/upstream")] == [1, 1, 0]


@pytest.mark.parametrize("kind", ["absolute", "relative", "file-url"])
def test_local_mirrors(fault_server, cache_dir, monkeypatch, capfd, kind):
    monkeypatch.chdir(PAYLOADS.parent)
    base = {"absolute": str(PAYLOADS), "relative": PAYLOADS.name, "file-url": PAYLOADS.as_uri()}[
        kind
    ]
    path = fetch(sqlite_at(fault_server.url(PATH)), mirrors=[base], cache_dir=cache_dir)
    assert fault_server.total() == 0
    assert f"from {base}/{SQLITE} in" in capfd.readouterr().err
    assert assert_cache_clean(cache_dir) == [path]


def test_local_mirror_without_the_file_falls_through(fault_server, cache_dir, tmp_path):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    path = fetch(
        sqlite_at(fault_server.url(PATH)), mirrors=[str(empty), empty.as_uri()], cache_dir=cache_dir
    )
    assert fault_server.count(PATH) == 1 and path.is_file()


def test_local_mirror_with_wrong_bytes(tmp_path, cache_dir):
    bad = tmp_path / "bad-mirror"
    bad.mkdir()
    (bad / SQLITE).write_bytes(b"not sqlite")
    with pytest.raises(ChecksumError) as info:
        fetch(
            sqlite_at("http://127.0.0.1:9/" + SQLITE),
            mirrors=[str(bad)],
            offline=True,
            cache_dir=cache_dir,
        )
    assert f"{bad}/{SQLITE}: sha256 mismatch: expected {SQLITE_SHA256}" in str(info.value)
    assert assert_cache_clean(cache_dir) == []


# ------------------------------------------------------------------------ offline


def test_offline_with_empty_cache(fault_server, cache_dir):
    src = sqlite_at(fault_server.url(PATH))
    with pytest.raises(SourceError) as info:
        fetch(src, offline=True, mirrors=[fault_server.url("/m")], cache_dir=cache_dir)
    msg = str(info.value)
    assert SQLITE in msg and SQLITE_SHA256 in msg
    assert "python -m geonox fetch" in msg and str(cache_dir / SQLITE_SHA256) in msg
    assert "GEONOX_MIRROR" in msg and len(msg.splitlines()) <= 3
    assert fault_server.total() == 0
    assert assert_cache_clean(cache_dir) == []


def test_offline_with_warm_cache_and_with_a_directory_mirror(fault_server, cache_dir):
    src = sqlite_at(fault_server.url(PATH))
    path = fetch(src, cache_dir=cache_dir)
    assert fault_server.count(PATH) == 1
    assert fetch(src, offline=True, cache_dir=cache_dir) == path
    assert fault_server.count(PATH) == 1
    # offline still copies from a local mirror (the fix the offline error suggests)
    other = cache_dir.parent / "other-cache"
    assert fetch(src, offline=True, mirrors=[str(PAYLOADS)], cache_dir=other).is_file()
    assert fault_server.count(PATH) == 1


# -------------------------------------------------------------------- concurrency


def test_two_processes_download_once(fault_server, cache_dir):
    fault_server.script(PATH, serve(rate=3_000_000))  # ~1.1 s, so the two overlap
    url = fault_server.url(PATH)
    procs = [
        subprocess.Popen(
            _fetch_cmd(url, cache_dir),
            env=_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert {out.strip() for out, _ in results} == {str(cache_dir / SQLITE_SHA256 / SQLITE)}
    assert fault_server.count(PATH) == 1
    errs = [err for _, err in results]
    assert sum("waiting for another geonox process" in e for e in errs) == 1, errs  # overlap
    assert sum("sha256 ok" in e for e in errs) == 1, errs
    assert len(assert_cache_clean(cache_dir)) == 1


def test_killed_download_then_rerun(fault_server, cache_dir):
    fault_server.script(PATH, serve(rate=800_000))  # ~4 s: plenty of time to kill it
    src = sqlite_at(fault_server.url(PATH))
    entry = cache_dir / SQLITE_SHA256
    proc = subprocess.Popen(
        _fetch_cmd(src.url, cache_dir),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def parts() -> list[Path]:
        return list(entry.glob("*.part")) if entry.is_dir() else []

    try:
        assert wait_for(lambda: any(p.stat().st_size > 200_000 for p in parts()), 15)
        assert not (entry / SQLITE).exists()  # never a partial file at the final path
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert parts() and listed(cache_dir) == []  # leftover, not listed

    lock = filelock.FileLock(str(cache_dir / ".locks" / f"{SQLITE_SHA256}.lock"))
    lock.acquire(timeout=0)  # the dead process's lock is free again
    lock.release()

    fault_server.script(PATH, serve())
    path = fetch(src, cache_dir=cache_dir)
    assert fault_server.count(PATH) == 2
    assert not parts()
    assert assert_cache_clean(cache_dir) == [path]


def test_threads_in_one_process_download_once(fault_server, cache_dir):
    import concurrent.futures

    fault_server.script(PATH, serve(rate=10_000_000))
    src = sqlite_at(fault_server.url(PATH))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: fetch(src, cache_dir=cache_dir, progress=False), range(4)))
    assert len(set(paths)) == 1 and fault_server.count(PATH) == 1


# --------------------------------------------------------------------- extraction


@pytest.fixture(params=["data-filter", "own-check-only"])
def filter_mode(request, monkeypatch):
    if request.param == "data-filter":
        if not hasattr(tarfile, "data_filter"):
            # Not applicable on such a Python; CI's 3.11.7 has the filter, so CI never skips.
            skip_or_fail("this Python has no tarfile data filter")
        monkeypatch.setattr(extract_module, "_USE_DATA_FILTER", True)
    else:
        monkeypatch.setattr(extract_module, "_USE_DATA_FILTER", False)
    return request.param


def _tar(path: Path, members: list[tuple], mode: str = "w:gz") -> Path:
    """members: (name, kind, payload) with kind file|dir|sym|hard|chr|fifo."""
    types = {
        "dir": tarfile.DIRTYPE,
        "sym": tarfile.SYMTYPE,
        "hard": tarfile.LNKTYPE,
        "chr": tarfile.CHRTYPE,
        "fifo": tarfile.FIFOTYPE,
    }
    with tarfile.open(path, mode) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode() if isinstance(payload, str) else payload
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = types[kind]
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind in ("sym", "hard"):
                info.linkname = payload
            tar.addfile(info)
    return path


EVIL_TARS = {
    "dotdot": [("pkg/", "dir", None), ("pkg/../../evil", "file", "x")],
    "dotdot-top": [("../evil", "file", "x")],
    "absolute": [("{tmp}/abs-evil", "file", "x")],  # an absolute path into tmp_path
    "symlink-out": [
        ("pkg/", "dir", None),
        ("pkg/f", "file", "ok"),
        ("pkg/link", "sym", "../../outside"),
    ],
    "symlink-absolute": [("pkg/link", "sym", "/etc/passwd")],
    "symlink-chain": [
        ("pkg/", "dir", None),
        ("pkg/up", "sym", ".."),
        ("pkg/up/esc", "sym", "../outside"),
    ],
    "hardlink-out": [("pkg/f", "file", "ok"), ("pkg/hl", "hard", "../../etc/passwd")],
    "hardlink-absolute": [("pkg/hl", "hard", "/etc/passwd")],
    "device": [("pkg/tty", "chr", None)],
    "fifo": [("pkg/pipe", "fifo", None)],
}


@pytest.mark.parametrize("case", sorted(EVIL_TARS))
def test_evil_tar_is_refused(tmp_path, filter_mode, case):
    work = tmp_path / "work"
    work.mkdir()
    members = [(n.format(tmp=tmp_path), k, p) for n, k, p in EVIL_TARS[case]]
    archive = _tar(tmp_path / "evil.tar.gz", members)
    dest = work / "dest"
    with pytest.raises(SourceError) as info:
        extract(archive, dest)
    bad = members[-1][0]
    assert repr(bad) in str(info.value) and "refusing to extract evil.tar.gz" in str(info.value)
    assert not dest.exists() and list(work.iterdir()) == []  # temp dir removed too
    for escaped in ("outside", "evil", "abs-evil"):
        assert not (tmp_path / escaped).exists()


def test_real_tarball_extracts(tmp_path, filter_mode):
    if not (MIRROR / SQLITE).is_file():
        skip_or_fail(f"no {SQLITE} in the source mirror {MIRROR}")
    top = extract(MIRROR / SQLITE, tmp_path / "src")
    assert top == tmp_path / "src" / "sqlite-autoconf-3520000"
    assert (top / "sqlite3.c").is_file()
    assert os.access(top / "configure", os.X_OK)
    assert [p.name for p in tmp_path.iterdir()] == ["src"]


@pytest.mark.parametrize("mode,suffix", [("w:bz2", "tar.bz2"), ("w:xz", "tar.xz"), ("w:gz", "tgz")])
def test_fine_tar_with_inner_links(tmp_path, filter_mode, mode, suffix):
    archive = _tar(
        tmp_path / f"pkg-1.{suffix}",
        [
            ("pkg-1/", "dir", None),
            ("pkg-1/a.txt", "file", "hello"),
            ("pkg-1/sub/", "dir", None),
            ("pkg-1/sub/link", "sym", "../a.txt"),
            ("pkg-1/hard", "hard", "pkg-1/a.txt"),
        ],
        mode,
    )
    top = extract(archive, tmp_path / "out")
    assert top == tmp_path / "out" / "pkg-1"
    assert (top / "sub" / "link").is_symlink() and (top / "sub" / "link").read_text() == "hello"
    assert (top / "hard").read_text() == "hello"


def test_several_top_level_entries_return_dest(tmp_path, filter_mode):
    archive = _tar(tmp_path / "flat.tar.gz", [("a.txt", "file", "a"), ("b/", "dir", None)])
    assert extract(archive, tmp_path / "flat") == tmp_path / "flat"


def test_extract_refuses_an_existing_dest(tmp_path):
    (tmp_path / "dest").mkdir()
    with pytest.raises(SourceError, match="already exists"):
        extract(PAYLOADS / SQLITE, tmp_path / "dest")


def _zip(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            zf.writestr(info, "data")
    return path


@pytest.mark.parametrize("bad", ["/etc/geonox-evil", "pkg/../../evil", "..\\evil", "C:/evil"])
def test_evil_zip_is_refused(tmp_path, bad):
    work = tmp_path / "work"
    work.mkdir()
    archive = _zip(tmp_path / "evil.zip", ["pkg/ok.txt", bad])
    assert bad in zipfile.ZipFile(archive).namelist()  # zipfile kept the evil name
    with pytest.raises(SourceError) as info:
        extract(archive, work / "dest")
    assert repr(bad) in str(info.value)
    assert list(work.iterdir()) == []


def test_fine_zip(tmp_path):
    top = extract(
        _zip(tmp_path / "pkg.zip", ["pkg-2/", "pkg-2/run.sh", "pkg-2/d/x"]), tmp_path / "out"
    )
    assert top == tmp_path / "out" / "pkg-2"
    assert os.access(top / "run.sh", os.X_OK) and (top / "d" / "x").read_text() == "data"
    flat = extract(_zip(tmp_path / "flat.zip", ["a", "b"]), tmp_path / "flat")
    assert flat == tmp_path / "flat"


def test_damaged_archive(tmp_path):
    bad = tmp_path / "broken.tar.gz"
    bad.write_bytes((PAYLOADS / SQLITE).read_bytes()[:100_000])
    with pytest.raises(SourceError, match=r"broken\.tar\.gz"):
        extract(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == [bad.name]
