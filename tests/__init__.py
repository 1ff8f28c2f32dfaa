"""The test suite, a package: each helper module is imported one way (tests.support, tests.webtools …)."""
