import platform

from ._sqlext import query, version


def selftest():
    answer = query("select 6*7")
    assert answer == "42", answer
    print(f"mesonext OK: SQLite {version()} on {platform.machine()}; 6*7 = {answer}")
