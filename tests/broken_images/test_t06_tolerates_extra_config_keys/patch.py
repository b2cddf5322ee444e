"""A strict key check (like pydantic extra="forbid") on the two config files."""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
replacements = [
    (
        "        if isinstance(config, dict):\n            for channel, settings in config.items():\n",
        "        if isinstance(config, dict):\n            for channel, settings in config.items():\n"
        "                extra = sorted(set(settings) - CHANNEL_KEYS)\n"
        "                if extra:\n"
        "                    raise ConfigurationError(\n"
        '                        f"unknown keys {extra} for channel {channel!r} in {input_config_path}"\n'
        "                    )\n",
    ),
    (
        '        config = _read_json(resource_config_path, "resource config")\n',
        '        config = _read_json(resource_config_path, "resource config")\n'
        "        extra = sorted(set(config) - RESOURCE_KEYS)\n"
        "        if extra:\n"
        '            raise ConfigurationError(f"unknown keys {extra} in {resource_config_path}")\n',
    ),
    (
        'EVALUATION_CHANNELS = ("validation", "test")\n',
        'EVALUATION_CHANNELS = ("validation", "test")\n'
        'CHANNEL_KEYS = {"ContentType", "TrainingInputMode", "S3DistributionType", "RecordWrapperType"}\n'
        "RESOURCE_KEYS = {\n"
        '    "current_host", "current_instance_type", "current_group_name", "hosts", "instance_groups",\n'
        '    "network_interface_name",\n'
        "}\n",
    ),
]
text = path.read_text()
for old, new in replacements:
    assert old in text, f"patch does not apply to {path}: {old!r}"
    text = text.replace(old, new, 1)
path.write_text(text)
