"""Writes the golden CIFAR-10 pickle fixtures of frontend/tests/cifar_pickle.rs.

Each file is one batch of the Python release's form: a dict whose 'data' is a uint8
array (2, 3072) of images 0 and 1 of the tests' pixel formula and whose 'labels' is
[3, 7], with 'batch_label' and 'filenames' beside them. Run it once with Python 2 and
numpy (cPickle, protocol 2, as the release was written) and once with Python 3 and
numpy (protocols 2 to 5, a Fortran-ordered array, str keys):

    python2 make.py && python3 make.py
"""
import sys
import numpy as np


def pixel(i, c, y, x):
    return (i * 7 + c * 50 + y * 3 + x * 5) % 256


data = np.array([[pixel(i, c, y, x) for c in range(3) for y in range(32) for x in range(32)]
                 for i in range(2)], dtype=np.uint8)
labels = [3, 7]

if sys.version_info[0] == 2:
    import cPickle
    d = {'batch_label': 'testing batch 1 of 1', 'labels': labels, 'data': data,
         'filenames': ['a.png', 'b.png']}
    with open('py2-cpickle-p2.pkl', 'wb') as f:
        cPickle.dump(d, f, 2)
else:
    import pickle
    d = {b'batch_label': b'testing batch 1 of 1', b'labels': labels, b'data': data,
         b'filenames': [b'a.png', b'b.png']}
    for p in (2, 3, 4, 5):
        with open('py3-p%d.pkl' % p, 'wb') as f:
            pickle.dump(d, f, p)
    d[b'data'] = np.asfortranarray(data)
    for p in (4, 5):
        with open('py3-p%d-fortran.pkl' % p, 'wb') as f:
            pickle.dump(d, f, p)
    with open('py3-p4-str-keys.pkl', 'wb') as f:
        pickle.dump({'labels': labels, 'data': data}, f, 4)
