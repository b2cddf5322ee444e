"""The pre-flight step of a planned job: what touches the file system (or S3's reach), checked before any container.

The plan functions check a request without I/O; this step checks what the plan names on the user's machine, so
that a job never trains for an hour and then loses its model to an output location that cannot be written:

- every local input (channel, processing input, checkpoint seed) exists and is readable by this user (the engine
  reads bind mounts as root, so a folder the user may not read would otherwise be used silently);
- every local output location exists or can be created, is writable, and is not a file;
- an ``s3://`` output with no S3 endpoint configured is refused when the job's S3 is the temporary moto server
  that ends with the job (its objects would be lost).
"""

from __future__ import annotations

from emulator.errors import InvalidSpec
from emulator.runtime.plan import JobPlan
from emulator.storage.locations import check_output, check_readable, local_path
from emulator.storage.s3 import is_s3


def check_plan(plan: JobPlan, *, temporary_s3: bool) -> None:
    """Refuse a plan whose locations cannot work; nothing is created or changed.

    ``temporary_s3``: the job's S3 is a moto server that stops when the job ends (no endpoint configured and no
    session or S3 given by the caller).

    Raises:
        InputNotFound: a local input does not exist.
        InvalidSpec: a local input cannot be read, an output cannot be written, or would be lost.
    """
    for item in plan.inputs:
        check_readable(item.uri, item.what)
    for seed in plan.seeds:
        if not is_s3(seed.location) and local_path(seed.location).exists():
            check_readable(seed.location, f"checkpoints {seed.location!r}")
    outputs = [(e.name, e.destination, e.form != "tree") for e in plan.exports]
    outputs += [(s.name, s.location, False) for s in plan.syncs]
    for name, destination, is_file in outputs:
        what = f"{plan.kind} output {name!r}"
        if is_s3(destination):
            if temporary_s3:
                raise InvalidSpec(temporary_s3_message(what, destination))
            continue
        check_output(destination, what, file=is_file)


def temporary_s3_message(what: str, uri: str) -> str:
    """Why an ``s3://`` output is refused without an S3 endpoint, and the fix (one line)."""
    return (
        f"{what} goes to {uri}, but no S3 endpoint is configured: the emulator's temporary S3 server stops when "
        "the job ends and the data would be lost; pass --s3-endpoint URL (e.g. a 'python -m emulator s3-server', "
        "or set SM_EMULATOR_S3_ENDPOINT_URL), or write to a local directory"
    )
