"""One process of the multi-process data-parallel test (tests/test_distribution.py), or its single-process reference.

    python tests/distributed_worker.py --out DIR --reference                      # one process, one device
    python tests/distributed_worker.py --out DIR --coordinator 127.0.0.1:PORT --num-processes 2 --process-id I

Every process builds the guide's MLP from the same seed and trains it data-parallel on the global batches of a
fixed random data set, feeding only its own rows of each global batch (process i holds rows
[i * b, (i + 1) * b) of every global batch of 2 * b rows); the last global batch is partial. It writes its final
weights (weights_<id>.npz) and logs (result_<id>.json) to DIR. The reference trains the same model on the whole
global batches in one process without a distribution.
"""
import argparse
import json
import os
import sys

import numpy as np

N, FEATURES, CLASSES, GLOBAL_BATCH, EPOCHS = 90, 784, 10, 32, 2


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, size=N).astype("int32")
    return x, y


def local_rows(n, global_batch, num_processes, index):
    """Row indices process `index` feeds: its contiguous share of every global batch, in batch order."""
    rows = []
    for start in range(0, n, global_batch):
        size = min(global_batch, n - start)
        if size % num_processes:
            raise ValueError(f"global batch of {size} rows does not split over {num_processes} processes")
        share = size // num_processes
        rows.extend(range(start + index * share, start + (index + 1) * share))
    return np.asarray(rows)


def build_model(keras):
    from fncompiler import layers
    keras.utils.set_random_seed(1234)
    inputs = keras.Input(shape=(FEATURES,), name="pixels")
    x = layers.Dense(64, activation="relu", name="d1")(inputs)
    x = layers.Dense(64, activation="relu", name="d2")(x)
    outputs = layers.Dense(CLASSES, name="logits")(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--coordinator")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    args = parser.parse_args(argv)

    import jax
    import fncompiler as keras
    from fncompiler import distribution

    x, y = data()
    if args.reference:
        pid, batch = 0, GLOBAL_BATCH
    else:
        distribution.initialize(job_addresses=args.coordinator, num_processes=args.num_processes,
                                process_id=args.process_id, initialization_timeout=60)
        pid = jax.process_index()
        assert jax.process_count() == args.num_processes, jax.process_count()
        distribution.set_distribution(distribution.DataParallel())
        rows = local_rows(N, GLOBAL_BATCH, args.num_processes, pid)
        x, y = x[rows], y[rows]
        batch = GLOBAL_BATCH // args.num_processes

    model = build_model(keras)
    history = model.fit(x, y, batch_size=batch, epochs=EPOCHS, shuffle=False, verbose=0)
    loss, acc = model.evaluate(x, y, batch_size=batch, verbose=0)
    weights = model.get_weights()
    np.savez(os.path.join(args.out, f"weights_{pid}.npz"), *weights)
    result = {"process_id": pid, "process_count": jax.process_count(), "devices": jax.device_count(),
              "local_devices": jax.local_device_count(), "history": history.history,
              "evaluate": [loss, acc], "checksum": float(sum(np.abs(w).sum() for w in weights)),
              "traces": dict(model._trainer.compiled.trace_counts)}
    with open(os.path.join(args.out, f"result_{pid}.json"), "w") as f:
        json.dump(result, f)
    print(json.dumps(result), flush=True)
    if not args.reference:
        jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
