#!/usr/bin/env python3
"""Writes the pickle seeds of the fuzz corpus (cifar_pickle, imdb) with numpy's own pickles.

    python3 fuzz/make_pickle_seeds.py      # needs numpy

The CIFAR-10 Python release is a pickled dict of a uint8 array `data` (N x 3072) and a
list `labels`; neon's imdb.pkl is a pickled pair (X, y) of lists. Each is written in a few
protocols, small (two images, four reviews)."""
import os
import pickle

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))


def out(target, name, obj, protocol):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


data = (np.arange(2 * 3072) % 251).astype(np.uint8).reshape(2, 3072)
batch = {"batch_label": "training batch 1 of 5", "labels": [3, 9], "data": data,
         "filenames": ["a.png", "b.png"]}
for protocol in (2, 4, 5):
    out("cifar_pickle", f"batch-p{protocol}.pkl", batch, protocol)
out("cifar_pickle", "batch-p0.pkl", {"labels": [1], "data": data[:1]}, 0)

x = [[1, 2, 3], [5], [30000, 4, 7, 12], []]
y = [0, 1, 1, 0]
out("imdb", "imdb-p2.pkl", (x, y), 2)
out("imdb", "imdb-split-p4.pkl", ((x[:3], y[:3]), (x[3:], y[3:])), 4)
out("imdb", "imdb-tuples-p0.pkl", (tuple(tuple(r) for r in x), tuple(y)), 0)
