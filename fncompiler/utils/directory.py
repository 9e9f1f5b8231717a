"""What `image_dataset_from_directory` and `text_dataset_from_directory` share: indexing a folder of class
subfolders into (file paths, integer labels, class names), Keras's validation split, and label encoding."""
import os

import numpy as np

from .dataset import IndexedDataset

__all__ = ["index_directory", "check_arguments", "split_samples", "encode_labels", "make_dataset",
           "directory_datasets"]


def _walk(root, formats, follow_links):
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_links):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(formats):
                out.append(os.path.join(dirpath, name))
    return out


def index_directory(fn, directory, labels, formats, class_names=None, shuffle=True, seed=None,
                    follow_links=False, verbose=True):
    """(file paths, int32 labels or None, class names or None), files in sorted order (then shuffled with
    ``np.random.RandomState(seed)``, paths and labels alike, as Keras). `fn` names the caller in errors."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"{fn}: directory {directory!r} does not exist or is not a folder.")
    if labels == "inferred":
        subdirs = sorted(d for d in os.listdir(directory)
                         if os.path.isdir(os.path.join(directory, d)) and not d.startswith("."))
        if class_names is not None:
            missing = [c for c in class_names if c not in subdirs]
            if missing:
                raise ValueError(f"{fn}: class_names {list(class_names)} must name subfolders of {directory!r}; "
                                 f"{missing} are not among its subfolders {subdirs}.")
            subdirs = list(class_names)
    else:
        if class_names is not None:
            raise ValueError(f"{fn}: class_names can only be given with labels='inferred' (with labels=None there "
                             "are no classes; with a list of labels the class names are its sorted values).")
        subdirs = [""]
    paths, label_list = [], []
    for index, sub in enumerate(subdirs):
        found = _walk(os.path.join(directory, sub) if sub else directory, formats, follow_links)
        paths += found
        label_list += [index] * len(found)
    if labels == "inferred":
        out_labels = np.asarray(label_list, dtype=np.int32)
        names = list(subdirs)
    elif labels is None:
        out_labels, names = None, None
    else:
        if len(labels) != len(paths):
            raise ValueError(f"{fn}: {len(labels)} labels were given, but {directory!r} holds {len(paths)} files "
                             f"of the allowed formats {formats}; give one label per file (in sorted path order).")
        out_labels = np.asarray(labels, dtype=np.int32)
        names = [str(v) for v in sorted(set(np.asarray(labels).tolist()))]
    if verbose:
        print(f"Found {len(paths)} files." if out_labels is None else
              f"Found {len(paths)} files belonging to {len(names)} classes.")
    if shuffle:
        rng = np.random.RandomState(seed)
        rng.shuffle(paths)
        if out_labels is not None:
            np.random.RandomState(seed).shuffle(out_labels)
    return paths, out_labels, names


def check_arguments(fn, labels, label_mode, validation_split, subset, shuffle, seed):
    """Keras's checks of the shared arguments; returns (labels, label_mode, seed) normalized."""
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError(f"{fn}: labels must be 'inferred', None, or a list/tuple of integer labels (one per file, "
                         f"in sorted path order); received {labels!r}.")
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(f'{fn}: label_mode must be "int", "categorical", "binary" or None; received '
                         f"{label_mode!r}.")
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    if validation_split is not None:
        if not 0 < validation_split < 1:
            raise ValueError(f"{fn}: validation_split must be in (0, 1); received {validation_split}.")
        if subset not in ("training", "validation", "both"):
            raise ValueError(f'{fn}: with validation_split, subset must be "training", "validation" or "both"; '
                             f"received {subset!r}.")
        if shuffle and seed is None:
            raise ValueError(f"{fn}: validation_split with shuffle=True needs a seed, so that the training and "
                             "validation subsets (made by separate calls) do not overlap; pass seed=<int>.")
    elif subset is not None:
        raise ValueError(f"{fn}: subset={subset!r} needs validation_split (a float in (0, 1)).")
    if seed is None and shuffle:
        seed = np.random.randint(10 ** 6)
    return labels, label_mode, seed


def split_samples(paths, labels, validation_split, subset, verbose):
    """[(paths, labels)] for the subset(s): training is all but the last int(split * n) samples."""
    if validation_split is None:
        return [(paths, labels)]
    n_val = int(validation_split * len(paths))
    parts = {"training": (paths[:len(paths) - n_val], None if labels is None else labels[:len(paths) - n_val]),
             "validation": (paths[len(paths) - n_val:], None if labels is None else labels[len(paths) - n_val:])}
    names = ["training", "validation"] if subset == "both" else [subset]
    if verbose:
        for name in names:
            print(f"Using {len(parts[name][0])} files for {name}.")
    return [parts[name] for name in names]


def encode_labels(labels, label_mode, num_classes):
    if label_mode == "int":
        return labels.astype(np.int32)
    if label_mode == "binary":
        return labels.astype(np.float32)[:, None]
    out = np.zeros((len(labels), num_classes), np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def make_dataset(paths, labels, label_mode, class_names, load, batch_size, shuffle, seed):
    """A Dataset reading `load(path)` for each sample of a batch; yields x or (x, encoded labels)."""
    paths = list(paths)
    encoded = None if labels is None else encode_labels(np.asarray(labels), label_mode, len(class_names or []))

    def fetch(idx):
        x = np.stack([load(paths[i]) for i in idx]) if len(idx) else None
        return x if encoded is None else (x, encoded[np.asarray(idx, dtype=np.int64)])

    ds = IndexedDataset(len(paths), fetch, batch_size=batch_size, shuffle=shuffle, seed=seed)
    ds.class_names = None if class_names is None else list(class_names)
    ds.file_paths = paths
    return ds


def directory_datasets(fn, directory, formats, what, load, labels, label_mode, class_names, batch_size, shuffle,
                       seed, validation_split, subset, follow_links, verbose):
    """Index `directory`, split it and return the Dataset (or [training, validation] for subset="both") reading
    each file with `load`; `what` names the files in the error for an empty folder."""
    paths, int_labels, names = index_directory(fn, directory, labels, formats, class_names, shuffle=shuffle,
                                               seed=seed, follow_links=follow_links, verbose=verbose)
    if label_mode == "binary" and len(names) != 2:
        raise ValueError(f'{fn}: label_mode="binary" needs exactly 2 classes; found {len(names)}: {names}.')
    if not paths:
        raise ValueError(f"{fn}: no {what} found in {os.fspath(directory)!r}; allowed formats: {formats}.")
    parts = split_samples(paths, int_labels, validation_split, subset, verbose)
    out = [make_dataset(p, l, label_mode, names, load, batch_size, shuffle, seed) for p, l in parts]
    return out if subset == "both" else out[0]
