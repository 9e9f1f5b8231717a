"""TextVectorization: strings -> token indices or token vectors (a host layer: runs in NumPy before the step).

Pipeline, as Keras 3: standardize (lower case and/or strip ASCII punctuation, or a callable) -> split (whitespace,
characters, or a callable) -> n-grams (joined by a space) -> a StringLookup whose index 0 is the mask token ""
(int mode) and index 1 the OOV token "[UNK]".
"""
import re

import numpy as np

from .host import HostLayer
from .lookup import StringLookup

_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]\^_`{|}~\']')
_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = ("whitespace", "character")


def standardize_text(text, standardize):
    if standardize is None:
        return text
    if callable(standardize):
        return standardize(text)
    if standardize in ("lower", "lower_and_strip_punctuation"):
        text = text.lower()
    if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = _PUNCTUATION.sub("", text)
    return text


def split_text(text, split):
    if split is None:
        return [text]
    if callable(split):
        return list(split(text))
    if split == "whitespace":
        return text.split()
    return list(text)


def ngrams_of(tokens, ngrams):
    if ngrams is None:
        return tokens
    out = []
    for n in ngrams:
        out.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return out


class TextVectorization(HostLayer):
    """Keras 3's TextVectorization (host layer). Output: int32 indices (batch, output_sequence_length or the
    longest sequence of the batch), or float32 (batch, vocabulary size) multi_hot / count / tf_idf vectors."""

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None,
                 output_mode="int", output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", vocabulary_size=None, **kwargs):
        super().__init__(**kwargs)
        if not (standardize is None or callable(standardize) or standardize in _STANDARDIZE):
            raise ValueError(f"TextVectorization: unknown `standardize` {standardize!r}; expected None, a callable "
                             f"or one of {_STANDARDIZE}.")
        if not (split is None or callable(split) or split in _SPLIT):
            raise ValueError(f"TextVectorization: unknown `split` {split!r}; expected None, a callable or one of "
                             f"{_SPLIT}.")
        if isinstance(ngrams, int) and not isinstance(ngrams, bool):
            if ngrams < 1:
                raise ValueError(f"TextVectorization: `ngrams` must be >= 1; received ngrams={ngrams}.")
            ngram_list = tuple(range(1, ngrams + 1))
        elif ngrams is None:
            ngram_list = None
        else:
            ngram_list = tuple(int(n) for n in ngrams)
        if output_mode not in ("int", "multi_hot", "count", "tf_idf", "binary", "tf-idf"):
            raise ValueError(f"TextVectorization: unknown `output_mode` {output_mode!r}; expected 'int', "
                             "'multi_hot', 'count' or 'tf_idf'.")
        if output_sequence_length is not None and output_mode != "int":
            raise ValueError("TextVectorization: `output_sequence_length` is only used with output_mode='int'; "
                             f"received output_mode={output_mode!r}.")
        if ragged:
            raise ValueError("TextVectorization: ragged=True is not supported by fncompiler (outputs are dense "
                             "arrays padded with 0).")
        self._standardize, self._split = standardize, split
        self._ngrams_arg, self._ngrams = ngrams, ngram_list
        self._output_sequence_length = output_sequence_length
        self._encoding, self._ragged = encoding, False
        self._lookup_layer = StringLookup(max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights,
                                          mask_token="" if output_mode == "int" else None, output_mode=output_mode,
                                          pad_to_max_tokens=pad_to_max_tokens, sparse=sparse, encoding=encoding,
                                          name=f"{self.name}_lookup")
        self._output_mode = self._lookup_layer.output_mode

    # -- text processing ---------------------------------------------------------------------------
    def _texts(self, inputs):
        arr = np.asarray(inputs)
        if arr.ndim == 2 and arr.shape[-1] == 1:
            arr = arr[:, 0]
        if arr.ndim > 1:
            raise ValueError(f"TextVectorization {self.name!r} expects strings of shape (batch,) or (batch, 1); "
                             f"received shape {arr.shape}.")
        if arr.dtype.kind != "U":
            arr = arr.astype(str)
        return arr

    def _tokens(self, text):
        return ngrams_of(split_text(standardize_text(str(text), self._standardize), self._split), self._ngrams)

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary (and idf weights for tf_idf) from strings: an array or an iterable of batches."""
        from ._data import batches
        if self._lookup_layer.input_vocabulary is not None:
            raise ValueError(f"TextVectorization {self.name!r} was given a vocabulary; it cannot adapt.")

        def documents():
            for i, batch in enumerate(batches(data, f"TextVectorization {self.name!r}")):
                if steps is not None and i >= steps:
                    return
                for text in np.atleast_1d(self._texts(batch)):
                    yield self._tokens(text)
        self._lookup_layer.learn_vocabulary(documents())

    def call(self, inputs):
        texts = self._texts(inputs)
        docs = [self._tokens(t) for t in np.atleast_1d(texts)]
        lookup = self._lookup_layer
        if self._output_mode == "int":
            length = self._output_sequence_length
            if length is None:
                length = max([len(d) for d in docs] + [0])
            out = np.zeros((len(docs), length), np.int32)
            for i, d in enumerate(docs):
                ids = lookup(np.asarray(d[:length], dtype=str)) if d else np.zeros((0,), np.int32)
                out[i, :len(ids)] = ids
            return out if texts.ndim else out[0]
        depth = lookup._depth()
        out = np.zeros((len(docs), depth), np.float32)
        for i, d in enumerate(docs):
            if d:
                out[i] = lookup(np.asarray(d, dtype=str)[None])[0]
        return out if texts.ndim else out[0]

    # -- vocabulary --------------------------------------------------------------------------------
    def get_vocabulary(self, include_special_tokens=True):
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def set_vocabulary(self, vocabulary, idf_weights=None):
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights)

    def vocabulary_size(self):
        return self._lookup_layer.vocabulary_size()

    def output_dtype(self, input_dtype):
        return "int32" if self._output_mode == "int" else "float32"

    def compute_output_shape(self, input_shape):
        batch = tuple(input_shape)[:1] if len(input_shape) else ()
        if self._output_mode == "int":
            return batch + (self._output_sequence_length,)
        return batch + (self._lookup_layer._depth(),)

    def get_config(self):
        lookup = self._lookup_layer
        cfg = lookup._lookup_config()
        for fn_arg in ("standardize", "split"):
            value = getattr(self, f"_{fn_arg}")
            if callable(value):
                raise ValueError(f"TextVectorization {self.name!r}: a callable `{fn_arg}` cannot be saved (files "
                                 "never hold code); use one of the built-in names, or rebuild the layer in code.")
        vocab = cfg["vocabulary"]
        if vocab is not None and self._output_mode == "int" and vocab[:1] == [""]:
            vocab = vocab[1:] if vocab[1:2] == ["[UNK]"] else vocab
            vocab = vocab[1:] if vocab[:1] == ["[UNK]"] else vocab
        elif vocab is not None and vocab[:1] == ["[UNK]"]:
            vocab = vocab[1:]
        idf = cfg["idf_weights"]
        if idf is not None and len(idf) == (len(vocab) if vocab else 0) + lookup._token_start():
            idf = idf[lookup._token_start():]
        return {**super().get_config(), "max_tokens": lookup.max_tokens, "standardize": self._standardize,
                "split": self._split, "ngrams": self._ngrams_arg, "output_mode": self._output_mode,
                "output_sequence_length": self._output_sequence_length,
                "pad_to_max_tokens": lookup.pad_to_max_tokens, "sparse": False, "ragged": False,
                "vocabulary": vocab, "idf_weights": idf, "encoding": self._encoding,
                "vocabulary_size": self.vocabulary_size()}
