"""In a checkout, load the contract suite's plugin (installed copies get it from the pytest11 entry point)."""

pytest_plugins = ["contract_tests.plugin"]
