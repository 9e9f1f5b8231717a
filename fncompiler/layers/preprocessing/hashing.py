"""Hashing: values -> bins with Keras's hash (FarmHash Fingerprint64, or SipHash-2-4 keyed by `salt`).

Integers are hashed as their decimal strings, as Keras does (tf.strings.as_string), so bins match Keras.
FarmHash comes from the optional `pyfarmhash` package (`pip install pyfarmhash`); SipHash is implemented here.
"""
import numpy as np

from ._data import check_output_mode, encode, encoded_shape
from .host import HostLayer

_MASK64 = (1 << 64) - 1


def fingerprint64(text):
    """FarmHash Fingerprint64 of a str/bytes (TensorFlow's to_hash_bucket_fast)."""
    try:
        import farmhash
    except ImportError as exc:
        raise ImportError("Hashing of strings without a salt uses FarmHash Fingerprint64, as Keras; install the "
                          "optional package `pyfarmhash` (pip install pyfarmhash), or pass salt=... (SipHash, "
                          "built in).") from exc
    return farmhash.fingerprint64(text if isinstance(text, str) else text.decode("utf-8"))


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _MASK64


def siphash24(key, data):
    """SipHash-2-4 of bytes `data` with a key of two 64-bit words (TensorFlow's to_hash_bucket_strong)."""
    k0, k1 = (int(k) & _MASK64 for k in key)
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573

    def rounds(n):
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & _MASK64; v1 = _rotl(v1, 13); v1 ^= v0; v0 = _rotl(v0, 32)  # noqa: E702
            v2 = (v2 + v3) & _MASK64; v3 = _rotl(v3, 16); v3 ^= v2                      # noqa: E702
            v0 = (v0 + v3) & _MASK64; v3 = _rotl(v3, 21); v3 ^= v0                      # noqa: E702
            v2 = (v2 + v1) & _MASK64; v1 = _rotl(v1, 17); v1 ^= v2; v2 = _rotl(v2, 32)  # noqa: E702
    n = len(data)
    end = n - n % 8
    for i in range(0, end, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v3 ^= m
        rounds(2)
        v0 ^= m
    last = int.from_bytes(data[end:] + b"\0" * (7 - n % 8) + bytes([n & 0xFF]), "little")
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def as_text(value):
    """The string Keras hashes for a value: strings as they are, integers as decimal strings."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def hash_values(values, num_bins, salt=None):
    """Element-wise `hash(value) % num_bins` (int64 array of the input's shape)."""
    flat = np.asarray(values).ravel()
    cache = {}
    out = np.empty(flat.shape, np.int64)
    for i, v in enumerate(flat.tolist()):
        text = as_text(v)
        h = cache.get(text)
        if h is None:
            h = siphash24(salt, text.encode("utf-8")) if salt is not None else fingerprint64(text)
            cache[text] = h
        out[i] = h % num_bins
    return out.reshape(np.shape(values))


class Hashing(HostLayer):
    """Keras 3's Hashing (host layer): `num_bins`, `mask_value` (hashed to bin 0; the others use bins
    1..num_bins-1), `salt` (an int or two ints: SipHash), output_mode int / one_hot / multi_hot / count."""

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False, **kwargs):
        if "dtype" not in kwargs or kwargs["dtype"] is None:
            kwargs["dtype"] = "int32" if output_mode == "int" else "float32"
        super().__init__(**kwargs)
        if not isinstance(num_bins, int) or num_bins <= 0:
            raise ValueError(f"Hashing: `num_bins` must be a positive int; received num_bins={num_bins!r}.")
        if sparse:
            raise ValueError("Hashing: sparse=True is not supported by fncompiler (outputs are dense arrays).")
        self.num_bins = num_bins
        self.mask_value = mask_value
        self.output_mode = check_output_mode("Hashing", output_mode)
        self.sparse = False
        if isinstance(salt, int) and not isinstance(salt, bool):
            salt = [salt, salt]
        elif salt is not None:
            salt = [int(s) for s in salt]
            if len(salt) != 2:
                raise ValueError(f"Hashing: `salt` must be an int or a list of two ints; received salt={salt!r}.")
        self.salt = salt

    def call(self, inputs):
        values = np.asarray(inputs)
        if self.mask_value is not None:
            bins = hash_values(values, self.num_bins - 1, self.salt) + 1
            bins = np.where(values == self.mask_value, 0, bins)
        else:
            bins = hash_values(values, self.num_bins, self.salt)
        return encode(np, bins, self.output_mode, self.num_bins, self.dtype)

    def output_dtype(self, input_dtype):
        return self.dtype

    def compute_output_shape(self, input_shape):
        return encoded_shape(input_shape, self.output_mode, self.num_bins)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "salt": self.salt, "mask_value": self.mask_value,
                "output_mode": self.output_mode, "sparse": self.sparse}
