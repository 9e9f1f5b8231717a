"""IntegerLookup and StringLookup: a vocabulary maps values to contiguous indices (Keras 3's IndexLookup).

Index layout, as Keras: [mask token (when given)] + [num_oov_indices OOV buckets] + vocabulary. `adapt` keeps
the most frequent values (ties: the larger value first, as Keras's reversed lexsort), up to `max_tokens` in all.
IntegerLookup runs inside the compiled step too (a sorted-table search in jax.numpy); StringLookup runs on the
host (strings), see host.py.
"""
import collections

import jax
import jax.numpy as jnp
import numpy as np

from ...symbolic import SymbolicTensor
from ..layer import Layer
from ._data import batches, encode, encoded_shape
from .hashing import hash_values
from .host import HostLayer, to_numpy

_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _vocab_list(vocabulary, layer):
    if vocabulary is None:
        return None
    if isinstance(vocabulary, str):
        try:
            with open(vocabulary, encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f if line.rstrip("\n")]
        except OSError as exc:
            raise ValueError(f"{layer}: cannot read the vocabulary file {vocabulary!r}: {exc}") from exc
    return list(np.asarray(vocabulary).tolist())


class _IndexLookup:
    """The vocabulary logic shared by both lookups (mixed into a Layer)."""

    def _init_lookup(self, max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, idf_weights, invert,
                     output_mode, sparse, pad_to_max_tokens, salt):
        name = type(self).__name__
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"{name}: `max_tokens` must be greater than 1 (or None); received max_tokens={max_tokens}.")
        if num_oov_indices < 0:
            raise ValueError(f"{name}: `num_oov_indices` must be >= 0; received {num_oov_indices}.")
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode == "tf-idf":
            output_mode = "tf_idf"
        if output_mode not in _MODES:
            raise ValueError(f"{name}: unknown `output_mode` {output_mode!r}; expected one of {_MODES}.")
        if invert and output_mode != "int":
            raise ValueError(f"{name}: invert=True needs output_mode='int'; received output_mode={output_mode!r}.")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(f"{name}: `idf_weights` is only used with output_mode='tf_idf'.")
        if sparse:
            raise ValueError(f"{name}: sparse=True is not supported by fncompiler (outputs are dense arrays).")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"{name}: pad_to_max_tokens=True needs `max_tokens`.")
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token = mask_token, oov_token
        self.invert, self.output_mode, self.sparse = bool(invert), output_mode, False
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.salt = salt
        self.input_vocabulary = _vocab_list(vocabulary, name)
        self.input_idf_weights = None if idf_weights is None else np.asarray(idf_weights, np.float32).tolist()
        self._adapted = False
        self._tokens = []              # the learned or given vocabulary without special tokens
        self._idf = None
        if self.input_vocabulary is not None:
            self.set_vocabulary(self.input_vocabulary, self.input_idf_weights)
        self.supports_masking = False

    # -- vocabulary ------------------------------------------------------------------------------
    def _token_start(self):
        return (0 if self.mask_token is None else 1) + self.num_oov_indices

    def _special_tokens(self):
        return ([] if self.mask_token is None else [self.mask_token]) + [self.oov_token] * self.num_oov_indices

    def set_vocabulary(self, vocabulary, idf_weights=None):
        name = type(self).__name__
        tokens = list(_vocab_list(vocabulary, name))
        special = self._special_tokens()
        if special and tokens[:len(special)] == special:
            tokens = tokens[len(special):]
            found_special = True
        else:
            found_special = False
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError(f"{name}: the mask token {self.mask_token!r} is in the vocabulary; it may only appear "
                             "first (as the vocabulary's special token).")
        if self.num_oov_indices and self.oov_token in tokens:
            raise ValueError(f"{name}: the OOV token {self.oov_token!r} is in the vocabulary; it may only appear "
                             "after the mask token (as a special token).")
        if len(set(tokens)) != len(tokens):
            dup = [t for t, c in collections.Counter(tokens).items() if c > 1]
            raise ValueError(f"{name}: the vocabulary has repeated entries {dup[:5]}.")
        size = len(tokens) + self._token_start()
        if self.max_tokens is not None and size > self.max_tokens:
            raise ValueError(f"{name}: the vocabulary has {size} entries with the special tokens, more than "
                             f"max_tokens={self.max_tokens}.")
        self._tokens = tokens
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ValueError(f"{name}: output_mode='tf_idf' needs `idf_weights` with the vocabulary.")
            idf = np.asarray(idf_weights, np.float32)
            if found_special:
                idf = idf[len(special):] if len(idf) == len(tokens) + len(special) else idf
            if len(idf) != len(tokens):
                raise ValueError(f"{name}: `idf_weights` has {len(idf)} entries for a vocabulary of {len(tokens)}.")
            self._idf = np.concatenate([np.full(self._token_start(), idf.mean() if len(idf) else 0.0), idf])
        self._refresh()

    def get_vocabulary(self, include_special_tokens=True):
        tokens = list(self._tokens)
        return self._special_tokens() + tokens if include_special_tokens else tokens

    def vocabulary_size(self):
        return len(self._tokens) + self._token_start()

    def _depth(self):
        return self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()

    def adapt(self, data, steps=None):
        """Learn the vocabulary (and document frequencies for tf_idf) from an array or an iterable of batches
        (for tf_idf, each row of a batch is one document)."""
        if self.input_vocabulary is not None:
            raise ValueError(f"{type(self).__name__} {self.name!r} was given a vocabulary; it cannot adapt.")

        def documents():
            for i, batch in enumerate(batches(data, f"{type(self).__name__} {self.name!r}")):
                if steps is not None and i >= steps:
                    return
                batch = self._prepare(to_numpy(batch, self))
                rows = batch.reshape(batch.shape[0], -1) if batch.ndim > 1 else batch.reshape(-1, 1)
                yield from rows.tolist()
        self.learn_vocabulary(documents())

    def learn_vocabulary(self, documents):
        """Set the vocabulary from an iterable of documents (lists of tokens): the most frequent tokens first."""
        counts, doc_counts, n_docs = collections.Counter(), collections.Counter(), 0
        for doc in documents:
            counts.update(doc)
            if self.output_mode == "tf_idf":
                doc_counts.update(set(doc))
            n_docs += 1
        for special in self._special_tokens():
            counts.pop(special, None)
        tokens = list(counts)
        order = np.lexsort((np.asarray(tokens), np.asarray([counts[t] for t in tokens])))[::-1] if tokens else []
        keep = [tokens[i] for i in order]
        if self.max_tokens is not None:
            keep = keep[: self.max_tokens - self._token_start()]
        self._tokens = keep
        if self.output_mode == "tf_idf":
            idf = np.log(1.0 + n_docs / (1.0 + np.asarray([doc_counts[t] for t in keep], np.float64)))
            self._idf = np.concatenate([np.full(self._token_start(), idf.mean() if len(idf) else 0.0),
                                        idf]).astype(np.float32)
        self._adapted = True
        self._refresh()

    def _prepare(self, batch):
        return batch

    # -- lookup ----------------------------------------------------------------------------------
    def _refresh(self):
        """Precompute the sorted table used by `_lookup`."""
        keys = np.asarray(self._tokens) if self._tokens else np.asarray([], dtype=self._key_dtype())
        order = np.argsort(keys, kind="stable")
        self._sorted_keys = keys[order]
        self._sorted_index = (order + self._token_start()).astype(np.int32)

    def _oov_index(self, xp, values):
        start = 0 if self.mask_token is None else 1
        if self.num_oov_indices <= 1:
            return xp.full(values.shape, start, np.int32)
        if xp is np and values.dtype.kind in "USO":
            return (hash_values(values, self.num_oov_indices, self.salt) + start).astype(np.int32)
        return (xp.mod(values, self.num_oov_indices) + start).astype(np.int32)

    def _lookup(self, xp, values):
        keys = self._sorted_keys if xp is np else jnp.asarray(self._sorted_keys)
        if len(self._sorted_keys) == 0:
            found = xp.zeros(values.shape, bool)
            index = xp.zeros(values.shape, np.int32)
        else:
            pos = xp.clip(xp.searchsorted(keys, values), 0, len(self._sorted_keys) - 1)
            found = keys[pos] == values
            index = (self._sorted_index if xp is np else jnp.asarray(self._sorted_index))[pos]
        if self.num_oov_indices == 0 and xp is np and not np.all(found | self._is_mask(values)):
            missing = np.unique(values[~(found | self._is_mask(values))])[:5].tolist()
            raise ValueError(f"{type(self).__name__} {self.name!r} has num_oov_indices=0 and received values that "
                             f"are not in the vocabulary: {missing}.")
        out = xp.where(found, index, self._oov_index(xp, values))
        if self.mask_token is not None:
            out = xp.where(self._is_mask(values), 0, out)
        return out

    def _is_mask(self, values):
        if self.mask_token is None:
            return np.zeros(np.shape(values), bool)
        return values == self.mask_token

    def _invert(self, xp, ids):
        table = np.asarray(self.get_vocabulary())
        ids = xp.asarray(ids)
        safe = xp.clip(ids, 0, len(table) - 1)
        oov = self.oov_token if self.oov_token is not None else table[0]
        out = (table if xp is np else jnp.asarray(table))[safe]
        return xp.where((ids < 0) | (ids >= len(table)), oov, out)

    def _encode(self, xp, values):
        if self.invert:
            return self._invert(xp, values)
        ids = self._lookup(xp, values)
        if self.output_mode == "int":
            return ids.astype(np.int32)
        depth = self._depth()
        out = encode(xp, ids, "count" if self.output_mode == "tf_idf" else self.output_mode, depth, "float32")
        if self.output_mode == "tf_idf":
            idf = np.zeros(depth, np.float32)
            idf[: len(self._idf)] = self._idf
            out = out * (idf if xp is np else jnp.asarray(idf))
        return out

    def _lookup_config(self):
        vocab = self.input_vocabulary
        idf = self.input_idf_weights
        if vocab is None and self._adapted:          # Keras keeps an adapted vocabulary in a file asset
            vocab = self.get_vocabulary()
            idf = None if self._idf is None else np.asarray(self._idf).tolist()
        return {"max_tokens": self.max_tokens, "num_oov_indices": self.num_oov_indices,
                "mask_token": self.mask_token, "oov_token": self.oov_token, "vocabulary": vocab,
                "idf_weights": idf, "invert": self.invert, "output_mode": self.output_mode, "sparse": self.sparse,
                "pad_to_max_tokens": self.pad_to_max_tokens, "salt": self.salt}

    def _lookup_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        return encoded_shape(input_shape, "count" if self.output_mode == "tf_idf" else self.output_mode,
                             self._depth())


class IntegerLookup(_IndexLookup, Layer):
    """Keras 3's IntegerLookup. Runs in jax.numpy inside compiled steps and in NumPy on host data."""
    batch_independent = True
    random_in_training = False

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1, vocabulary=None,
                 vocabulary_dtype="int64", idf_weights=None, invert=False, output_mode="int", sparse=False,
                 pad_to_max_tokens=False, oov_method="floormod", salt=None, **kwargs):
        Layer.__init__(self, **kwargs)
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(f"IntegerLookup: `oov_method` must be 'floormod' or 'farmhash'; received {oov_method!r}.")
        self.vocabulary_dtype = vocabulary_dtype
        self.oov_method = oov_method
        if vocabulary is not None and not isinstance(vocabulary, str):
            vocabulary = np.asarray(vocabulary).astype(np.int64).tolist()
        self._init_lookup(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, idf_weights, invert,
                          output_mode, sparse, pad_to_max_tokens, salt)

    def _key_dtype(self):
        return np.int64

    def _prepare(self, batch):
        if batch.dtype.kind not in "iu":
            if batch.dtype.kind == "f" and np.all(np.mod(batch, 1) == 0):
                return batch.astype(np.int64)
            raise TypeError(f"IntegerLookup {self.name!r} expects integer values; received dtype {batch.dtype}.")
        return batch.astype(np.int64)

    def _oov_index(self, xp, values):
        if self.oov_method == "farmhash" and self.num_oov_indices > 1:
            if xp is not np:
                raise TypeError(f"IntegerLookup {self.name!r}: oov_method='farmhash' hashes on the host; it cannot "
                                "run inside a compiled step (use the default 'floormod').")
            start = 0 if self.mask_token is None else 1
            return (hash_values(values, self.num_oov_indices, self.salt) + start).astype(np.int32)
        return super()._oov_index(xp, values)

    def _refresh(self):
        super()._refresh()
        self._sorted_keys = self._sorted_keys.astype(np.int64)

    def call(self, inputs):
        if isinstance(inputs, np.ndarray) and not isinstance(inputs, jax.Array):
            return self._encode(np, self._prepare(inputs))
        if self._sorted_keys.size and (self._sorted_keys.max() > 2 ** 31 - 1 or self._sorted_keys.min() < -2 ** 31):
            raise ValueError(f"IntegerLookup {self.name!r}: vocabulary values beyond int32 cannot be looked up "
                             "inside a compiled step (JAX runs with 32-bit integers).")
        values = inputs if jnp.issubdtype(inputs.dtype, jnp.integer) else inputs.astype(jnp.int32)
        saved = self._sorted_keys
        self._sorted_keys = saved.astype(np.int32)
        try:
            return self._encode(jnp, values)
        finally:
            self._sorted_keys = saved

    def compute_output_shape(self, input_shape):
        return self._lookup_output_shape(input_shape)

    def compute_output_spec(self, inputs, *args, **kwargs):
        dtype = "int32" if self.output_mode == "int" else "float32"
        return SymbolicTensor(self.compute_output_shape(tuple(inputs.shape)), dtype)

    def get_config(self):
        return {**Layer.get_config(self), **self._lookup_config(), "vocabulary_dtype": self.vocabulary_dtype,
                "oov_method": self.oov_method}


class StringLookup(_IndexLookup, HostLayer):
    """Keras 3's StringLookup (host layer: NumPy on string arrays; `invert=True` maps indices back to strings)."""

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]", vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", pad_to_max_tokens=False, sparse=False,
                 encoding="utf-8", salt=None, **kwargs):
        HostLayer.__init__(self, **kwargs)
        self.encoding = encoding
        if vocabulary is not None and not isinstance(vocabulary, str):
            vocabulary = [v.decode(encoding) if isinstance(v, bytes) else str(v) for v in np.asarray(vocabulary).tolist()]
        self._init_lookup(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, idf_weights, invert,
                          output_mode, sparse, pad_to_max_tokens, salt)

    def _key_dtype(self):
        return str

    def _prepare(self, batch):
        if batch.dtype.kind != "U":
            batch = batch.astype(str)
        return batch

    def call(self, inputs):
        if self.invert:
            return self._invert(np, np.asarray(inputs))
        return self._encode(np, self._prepare(np.asarray(inputs)))

    def output_dtype(self, input_dtype):
        if self.invert:
            return "string"
        return "int32" if self.output_mode == "int" else "float32"

    def compute_output_shape(self, input_shape):
        return self._lookup_output_shape(input_shape)

    def get_config(self):
        return {**Layer.get_config(self), **self._lookup_config(), "encoding": self.encoding}
