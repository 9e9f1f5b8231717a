"""fncompiler.distribution: Keras 3's `keras.distribution` API over `jax.sharding` / `jax.distributed`.

    from fncompiler import distribution
    distribution.set_distribution(distribution.DataParallel())      # every device, batches split along axis 0
    model.fit(x, y, batch_size=64)                                   # one SPMD step per batch

See docs/distributed.md (one CPU -> a GPU node -> several hosts).
"""
from .distribution_lib import (DEFAULT_BATCH_DIM_NAME, DataParallel, DeviceMesh, Distribution, LayoutMap,
                               ModelParallel, TensorLayout, distribute_tensor, distribution, get_device_count,
                               get_distribution, initialize, initialize_distributed, layout_of, list_devices,
                               num_processes, process_id, set_distribution, to_host)

__all__ = ["DEFAULT_BATCH_DIM_NAME", "DataParallel", "DeviceMesh", "Distribution", "LayoutMap", "ModelParallel",
           "TensorLayout", "distribute_tensor", "distribution", "get_device_count", "get_distribution",
           "initialize", "initialize_distributed", "layout_of", "list_devices", "num_processes", "process_id",
           "set_distribution", "to_host"]
