"""A save killed midway (kill -9 while `save`, `save_weights` or ModelCheckpoint writes) leaves the previous file
intact and its temp file behind; the next save into that folder removes that stale temp file, and only such
files: never a live writer's, nor any other file."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fncompiler as keras
from fncompiler.saving import file_format

# The subprocess builds a model big enough (~16 MB of weights, ~0.3 s to deflate and fsync) that a kill lands
# inside the write, saves it once (the "previous file"), says READY, then saves over it again and again.
WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import fncompiler as keras
    mode, path = sys.argv[1], sys.argv[2]
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2000,))
    model = keras.Model(inputs, keras.layers.Dense(2000, name="big")(inputs))
    if mode == "save":
        write = lambda: model.save(path)
    elif mode == "save_weights":
        write = lambda: model.save_weights(path)
    else:
        cb = keras.callbacks.ModelCheckpoint(path, monitor="loss")
        cb.set_model(model)
        write = lambda: cb.on_epoch_end(0, {"loss": 1.0})
    write()
    np.save(path + ".expected.npy", model.get_layer("big").kernel.numpy()[:3, :3])
    print("READY", flush=True)
    while True:
        write()
""")

SUFFIX = {"save": "model.keras", "save_weights": "model.weights.h5", "checkpoint": "ckpt.keras"}


def _temp_files(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".tmp-"))


def _kill_mid_write(mode, folder, tries=10):
    """Start the writer, kill -9 it while a temp file exists; returns (path, temp names left)."""
    path = str(folder / SUFFIX[mode])
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    for _ in range(tries):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, mode, path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, text=True)
        try:
            line = proc.stdout.readline()
            assert line.strip() == "READY", line + proc.stderr.read()[-3000:]
            deadline = time.monotonic() + 60
            while not _temp_files(folder) and time.monotonic() < deadline:
                time.sleep(0.002)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        left = _temp_files(folder)
        if left:
            return path, left
    pytest.fail(f"the kill never landed inside a write in {tries} tries")


def _check_previous_file_intact(mode, path):
    expected = np.load(path + ".expected.npy")
    inputs = keras.Input((2000,))
    fresh = keras.Model(inputs, keras.layers.Dense(2000, name="big")(inputs))
    if mode == "save_weights":
        fresh.load_weights(path)
        got = fresh
    else:
        got = keras.models.load_model(path)
    np.testing.assert_array_equal(got.get_layer("big").kernel.numpy()[:3, :3], expected)


def _run(mode, tmp_path):
    path, left = _kill_mid_write(mode, tmp_path)
    assert len(left) == 1 and left[0].endswith(file_format.TEMP_SUFFIX), left
    _check_previous_file_intact(mode, path)

    # files the next save must leave alone: a live writer's temp file (a sleeping child process of ours, named
    # as it would name it), this process's own prefix, another host's, an older naming, a user's file
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        keep = [file_format.temp_prefix(sleeper.pid) + "abc123" + file_format.TEMP_SUFFIX,
                file_format.temp_prefix() + "mine" + file_format.TEMP_SUFFIX,
                ".tmp-00000000-1-1-xyz" + file_format.TEMP_SUFFIX,
                ".tmp-k3j4h5g6" + file_format.TEMP_SUFFIX,
                ".tmp-notes.txt"]
        if file_format._host_tag() == "00000000":
            keep.remove(".tmp-00000000-1-1-xyz" + file_format.TEMP_SUFFIX)
        for name in keep:
            (tmp_path / name).write_bytes(b"partial")
        # the next save into the folder (by this process: not the killed writer) removes the killed one's file
        inputs = keras.Input((4,))
        small = keras.Model(inputs, keras.layers.Dense(2)(inputs))
        if mode == "save_weights":
            small.save_weights(str(tmp_path / "other.weights.h5"))
        else:
            small.save(str(tmp_path / "other.keras"))
        assert _temp_files(tmp_path) == sorted(keep)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
    # once the sleeper is gone, its file is stale too
    file_format.remove_stale_temp_files(str(tmp_path))
    assert _temp_files(tmp_path) == sorted(set(keep) - {keep[0]})
    _check_previous_file_intact(mode, path)


def test_killed_save_leaves_previous_file_and_next_save_cleans_up(tmp_path):
    _run("save", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["save_weights", "checkpoint"])
def test_killed_save_weights_and_checkpoint(mode, tmp_path):
    _run(mode, tmp_path)


def test_reused_pid_and_zombie_count_as_gone(tmp_path, monkeypatch):
    """A file whose pid now belongs to a process started at another time is stale; an undeterminable one is kept."""
    pid = os.getpid()
    host = file_format._host_tag()
    start = file_format._process_start(pid)[1]
    reused = f".tmp-{host}-{pid}-{start + 12345}-aaa{file_format.TEMP_SUFFIX}"
    mine = f".tmp-{host}-{pid}-{start}-bbb{file_format.TEMP_SUFFIX}"
    for name in (reused, mine):
        (tmp_path / name).write_bytes(b"x")
    if start:  # Linux: start times are known
        assert file_format.remove_stale_temp_files(str(tmp_path)) == [reused]
        assert _temp_files(tmp_path) == [mine]
    monkeypatch.setattr(file_format, "_process_start", lambda pid: (None, 0))
    assert file_format.remove_stale_temp_files(str(tmp_path)) == []
    monkeypatch.setattr(file_format, "_process_start", lambda pid: (False, 0))  # e.g. a zombie
    assert file_format.remove_stale_temp_files(str(tmp_path)) == [mine]
