import platform

from ._sqlext import query, version


def selftest():
    answer = query("select 6*7")
    assert answer == "42", answer
    rtree = query("select count(*) from pragma_compile_options where compile_options = 'ENABLE_RTREE'")
    assert rtree == "1", rtree
    print(f"sqlext OK: SQLite {version()} on {platform.machine()}; 6*7 = {answer}")
