"""The runtime under every job kind: the Docker seam, one container lifecycle, clusters of hosts, the
process's session (one Docker client, one S3, the labels and the exit sweep) and the job contract."""
