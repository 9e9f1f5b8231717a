"""``pad_sequences``: a list of variable-length sequences -> one padded NumPy array, as ``keras.utils``."""

import numpy as np

__all__ = ["pad_sequences"]


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (and truncate) `sequences` to one array of shape ``(len(sequences), maxlen) + sample_shape``.

    maxlen: the output length; None: the longest sequence. Longer sequences are cut: ``truncating="pre"``
        drops values from the start, ``"post"`` from the end.
    padding: ``"pre"`` puts `value` before each sequence, ``"post"`` after it.
    dtype: the output dtype (Keras's default ``"int32"``; ``object`` or a string dtype for strings).
    Each element may itself be an array (then every non-empty sequence must have the same sample shape,
    taken from the first non-empty one).
    """
    if padding not in ("pre", "post"):
        raise ValueError(f'pad_sequences: padding must be "pre" or "post"; received {padding!r}.')
    if truncating not in ("pre", "post"):
        raise ValueError(f'pad_sequences: truncating must be "pre" or "post"; received {truncating!r}.')
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"pad_sequences: `sequences` must be a list of iterables; received "
                         f"{type(sequences).__name__}.")
    lengths, sample_shape = [], None
    for i, s in enumerate(sequences):
        try:
            lengths.append(len(s))
        except TypeError:
            raise ValueError(f"pad_sequences: `sequences` must be a list of iterables; element {i} is "
                             f"{type(s).__name__} {s!r}.") from None
        if sample_shape is None and len(s):
            sample_shape = np.asarray(s).shape[1:]
    sample_shape = sample_shape or ()
    if maxlen is None:
        maxlen = max(lengths, default=0)
    if isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen must be a non-negative int or None; received {maxlen!r}.")
    maxlen = int(maxlen)
    dt = np.dtype(dtype)
    if isinstance(value, str) and dt != object and dt.kind not in "US":
        raise ValueError(f"pad_sequences: dtype {dt} cannot hold the string padding value {value!r}; pass "
                         "dtype=object (or a string dtype) for string sequences.")
    out = np.full((len(lengths), maxlen) + tuple(sample_shape), value, dtype=dt)
    if maxlen == 0:
        return out
    for i, s in enumerate(sequences):
        if not len(s):
            continue
        kept = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        kept = np.asarray(kept, dtype=dt)
        if kept.shape[1:] != tuple(sample_shape):
            raise ValueError(f"pad_sequences: sequence {i} has elements of shape {kept.shape[1:]}, but the first "
                             f"non-empty sequence's are {tuple(sample_shape)}; all elements need one shape.")
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, maxlen - len(kept):] = kept
    return out
