"""Devices and processes of a (possibly multi-process) JAX run: list_devices, get_device_count, process_id,
num_processes, initialize (jax.distributed), and to_jax_device ("cpu:0" -> a jax.Device)."""
import os

import jax


def list_devices(device_type=None):
    """All devices (global ones in a multi-process run) as "platform:id" strings, e.g. "cpu:0", "gpu:3".

    device_type: "cpu", "gpu" or "tpu"; default: the default backend (accelerators when present).
    """
    device_type = device_type.lower() if device_type else None
    return [f"{d.platform}:{d.id}" for d in jax.devices(device_type)]


def get_device_count(device_type=None):
    """How many devices `list_devices(device_type)` returns."""
    return len(list_devices(device_type))


def process_id():
    return jax.process_index()


def num_processes():
    return jax.process_count()


def _env_int(name):
    value = os.environ.get(name)
    return None if value in (None, "") else int(value)


def initialize(job_addresses=None, num_processes=None, process_id=None, coordinator_address=None, **kwargs):
    """Join a multi-process (multi-host) run: `jax.distributed.initialize` under Keras's argument names.

    Call it once per process, before any computation. job_addresses: comma-separated "host:port" addresses of all
    jobs; only the first one (process 0, the coordinator) is used by JAX, so one address is enough. Each value
    falls back to the environment variables KERAS_DISTRIBUTION_JOB_ADDRESSES / _NUM_PROCESSES / _PROCESS_ID, and
    with none of them JAX's own cluster detection runs (SLURM, Open MPI, Cloud TPU). `coordinator_address` is
    JAX's name for the same thing; other keyword arguments (`local_device_ids`, `initialization_timeout`, ...)
    go to `jax.distributed.initialize` unchanged.
    """
    if job_addresses is not None and coordinator_address is not None:
        raise ValueError("initialize: pass job_addresses or coordinator_address, not both.")
    address = job_addresses if job_addresses is not None else coordinator_address
    if address is None:
        address = os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or None
    if num_processes is None:
        num_processes = _env_int("KERAS_DISTRIBUTION_NUM_PROCESSES")
    if process_id is None:
        process_id = _env_int("KERAS_DISTRIBUTION_PROCESS_ID")
    if address is not None:
        address = address.split(",")[0].strip()
    jax.distributed.initialize(coordinator_address=address, num_processes=num_processes, process_id=process_id,
                               **kwargs)


def initialize_distributed(coordinator_address=None, num_processes=None, process_id=None, **kwargs):
    """`initialize` under JAX's argument names (`jax.distributed.initialize(coordinator_address=...)`)."""
    initialize(coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id,
               **kwargs)


def to_jax_device(device):
    if isinstance(device, jax.Device):
        return device
    if isinstance(device, str):
        platform, _, index = device.partition(":")
        platform = platform.lower()
        try:
            candidates = jax.devices(platform)
        except RuntimeError as exc:
            raise ValueError(f"Unknown device {device!r}: no {platform!r} backend ({exc}).") from None
        for d in candidates:
            if str(d.id) == index:
                return d
        raise ValueError(f"Unknown device {device!r}; available: {list_devices(platform)}.")
    raise TypeError(f"A device must be a jax.Device or a 'platform:id' string; received {device!r}.")
