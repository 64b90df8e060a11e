"""twomod's own test suite, run by geonox's test step from a copy outside the source tree."""
import sqlite3
from pathlib import Path

import twomod
from twomod import _a, _b, _c


def test_installed_wheel_is_what_is_imported():
    assert "site-packages" in Path(twomod.__file__).parts


def test_both_modules_share_one_sqlite():
    _a.set_limit(12345678)
    assert _b.get_limit() == 12345678  # a second copy of the library would answer 0


def test_the_bundled_sqlite_not_pythons():
    assert _a.version() == "3.52.0"
    assert _a.version() != sqlite3.sqlite_version or sqlite3.sqlite_version == "3.52.0"


def test_build_env_and_before_build_hooks():
    from twomod import _built

    assert _b.built_for() == _built.ARCH == "x86_64"
    assert _built.PYTHON.startswith("/")  # {python}: the building interpreter's path


def test_the_module_without_sqlite():
    assert _c.answer() == 42
