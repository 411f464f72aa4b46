"""Writes sine.npz: a small regression data set for examples/models/regression_sine.yaml.

y = 0.5 * sin(3 * x1) + 0.3 * x2 with (x1, x2) uniform on [-1, 1]^2; 2,048 training and
512 test examples; arrays x_train [2048, 2], y_train [2048, 1], x_test [512, 2],
y_test [512, 1], all float32. Run: python3 make_sine.py (numpy only; the seed is fixed).
"""

import numpy as np

rng = np.random.default_rng(2026)


def split(n):
    x = rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
    y = (0.5 * np.sin(3.0 * x[:, 0]) + 0.3 * x[:, 1]).astype(np.float32)[:, None]
    return x, y


x_train, y_train = split(2048)
x_test, y_test = split(512)
np.savez_compressed(
    "sine.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
)
# The cost of always predicting the training mean (MeanSquared: 0.5 * mean squared error).
print("predict-the-mean test cost:", 0.5 * np.mean((y_test - y_train.mean()) ** 2))
