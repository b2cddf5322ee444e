"""Where data lives: local paths or s3:// URIs (moto or a real endpoint), and the tar streams that
carry artifacts out of containers."""
