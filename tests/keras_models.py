"""Keras models the tests make, in a child process of their own (`python -m tests.keras_models ...`): the
pytest process imports torch, and TensorFlow must never share a process with it.

    train SPLIT SIZE OUT   a tiny CNN trained on the split's train part (canonical path at SIZE, pixels / 255)
    three-class OUT        a 3-way softmax image model: a .keras file that is no binary classifier

Never import this module in the pytest process.
    mobilenet STATE X OUT  the seed network's base set from a torchvision state (.npz), its out_relu map of X
"""

import sys
from pathlib import Path

import keras
import numpy as np

from detection.core.caches import arrays_cache
from detection.core.data import split_load
from detection.core.keras.nets import mobilenet_torch_weights_set, seed_mobilenet_build
from detection.core.preprocess import arrays_scale


def tiny_cnn_train(*, split_file: Path, size: int, out: Path) -> None:
    keras.utils.set_random_seed(0)
    train = split_load(path=split_file)["splits"]["train"]
    x = arrays_scale(arrays_cache(train, size=size, kind="canonical", cache_dir=None), scale="unit")
    y = np.array([sample.label for sample in train], dtype=np.float32)
    inputs = keras.Input((size, size, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv3")(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv4")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="ai")(h))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=60, batch_size=16, verbose=0)
    print(f"train accuracy {history.history['accuracy'][-1]:.3f}")
    model.save(out)


def three_class_save(*, out: Path) -> None:
    inputs = keras.Input((32, 32, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="conv")(inputs))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h)).save(out)


def mobilenet_features(*, state_file: Path, inputs_file: Path, out: Path) -> None:
    x = np.load(inputs_file)
    model = seed_mobilenet_build(image_size=x.shape[1])
    with np.load(state_file) as state:
        mobilenet_torch_weights_set(model, {key: state[key] for key in state.files})
    base = keras.Model(model.inputs, model.get_layer("out_relu").output)
    np.save(out, np.asarray(base(x, training=False)))


if __name__ == "__main__":
    command, *paths = sys.argv[1:]
    if command == "train":
        tiny_cnn_train(split_file=Path(paths[0]), size=int(paths[1]), out=Path(paths[2]))
    elif command == "three-class":
        three_class_save(out=Path(paths[0]))
    elif command == "mobilenet":
        mobilenet_features(state_file=Path(paths[0]), inputs_file=Path(paths[1]), out=Path(paths[2]))
    else:
        raise SystemExit(f"unknown command {command}")
