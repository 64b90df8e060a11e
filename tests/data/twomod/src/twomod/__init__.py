"""twomod: two extension modules over one SQLite."""
