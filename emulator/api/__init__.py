"""A SageMaker-compatible API server: the SageMaker Python SDK and boto3 run against the emulator unchanged.

``protocol`` (JSON 1.1 through botocore's model), ``backend`` (the operations over the library's job classes),
``store`` (SQLite records), ``logs`` (CloudWatch Logs streams), ``server`` (the HTTP front door).
"""

#: The API server's default port on 127.0.0.1.
DEFAULT_PORT = 8765
