"""SageMaker contract suite for bring-your-own-container images.

Run it with ``pytest --image IMAGE`` (in a checkout) or ``pytest --pyargs contract_tests --image IMAGE``
(installed); see docs/contract-suite.md. ``--contract-strict`` turns the suite's warnings (a SHOULD the image
bends, e.g. a 5xx for malformed input) into failures.
"""

from contract_tests._report import ContractWarning

__all__ = ["ContractWarning"]
