"""Data-parallel step time from 1 to N simulated CPU devices (one subprocess per device count).

    python benchmarks/scaling.py [--devices 1,2,4] [--steps 20] [--batch-size 256] [--width 512] [--json out.json]

Each subprocess starts JAX with `XLA_FLAGS=--xla_force_host_platform_device_count=D`, sets
`DataParallel()` over its D devices, trains an MLP (784 -> width -> width -> 10, Adam) and reports:
  compile s   first train step (trace + XLA compile + run)
  step ms     the jitted train step alone on an already placed global batch (median of --steps runs)
  fit ms      model.fit wall time per step (host slicing, placement of each batch, step, metrics)
The "none" row is the same model without a distribution. Simulated devices share this machine's CPU cores, so
this is a sanity figure (the SPMD program runs, with its collectives, at a sane cost), not a speedup claim: real
scaling needs real devices (docs/distributed.md).
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def child(devices, steps, batch_size, width):
    import jax
    import jax.numpy as jnp
    import numpy as np

    import fncompiler as keras
    from fncompiler import distribution, layers
    from fncompiler.runtime import placement

    keras.utils.set_random_seed(0)
    if devices:
        distribution.set_distribution(distribution.DataParallel())
    inputs = keras.Input(shape=(784,))
    h = layers.Dense(width, activation="relu")(inputs)
    h = layers.Dense(width, activation="relu")(h)
    model = keras.Model(inputs, layers.Dense(10)(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    n = batch_size * steps
    x = rng.normal(size=(n, 784)).astype("float32")
    y = rng.integers(0, 10, size=n).astype("int32")

    t0 = time.perf_counter()
    model.fit(x[:batch_size], y[:batch_size], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    compile_s = time.perf_counter() - t0

    t = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    fit_s = (time.perf_counter() - t) / steps

    trainer = model._trainer
    step = trainer.compiled.step("train")
    # a private copy of the start state: the step donates it, the trainer keeps its own buffers
    state = jax.tree.map(lambda a: jnp.array(a, copy=True), trainer._start_state())
    xb, yb = placement.place_batch([x[:batch_size]]), placement.place_batch([y[:batch_size]])
    state = step(state, xb, yb, None)
    jax.block_until_ready(state)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        state = step(state, xb, yb, None)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t)
    spec = placement.place_batch([x[:batch_size]])[0].sharding
    return {"devices": jax.device_count() if devices else "none", "batch": batch_size,
            "per_device": batch_size // (jax.device_count() if devices else 1),
            "compile_s": compile_s, "step_ms": 1e3 * float(np.median(times)), "fit_ms": 1e3 * fit_s,
            "samples_per_s": batch_size / float(np.median(times)), "batch_sharding": str(spec),
            "traces": trainer.compiled.trace_counts["train"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="1,2,4")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--json")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.child, args.steps, args.batch_size, args.width)), flush=True)
        return 0

    counts = [0] + [int(d) for d in args.devices.split(",")]
    rows = []
    for d in counts:
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={max(d, 1)}", JAX_PLATFORMS="cpu")
        cmd = [sys.executable, os.path.abspath(__file__), "--child", str(d), "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--width", str(args.width)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"device count {d}: the subprocess failed (rc={proc.returncode})")
        rows.append(json.loads(lines[-1][len("RESULT "):]))

    print(f"MLP 784-{args.width}-{args.width}-10, Adam, global batch {args.batch_size}, "
          f"{os.cpu_count()} CPU cores shared by the simulated devices")
    header = f"{'devices':>8} {'per-device':>10} {'compile s':>10} {'step ms':>9} {'fit ms/step':>12} " \
             f"{'samples/s':>10} {'traces':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['devices']!s:>8} {r['per_device']:>10} {r['compile_s']:>10.2f} {r['step_ms']:>9.2f} "
              f"{r['fit_ms']:>12.2f} {r['samples_per_s']:>10.0f} {r['traces']:>7}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
