"""Helper modules of the tests (fixtures' builders, fakes); no test functions here."""
