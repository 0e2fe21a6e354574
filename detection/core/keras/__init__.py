"""Keras bundles (TensorFlow): never imported in a process that imports torch (TensorFlow and PyTorch in one
process crash here). The keras Celery worker, `train_keras_mobilenet` and `import_keras_model` run them; any
other process reaches them through `proxy.KerasDetectorProxy`, a TensorFlow child process.

- nets: the seed's MobileNetV2 (keras.applications, weights=None) + head; the torchvision ImageNet start mapped in.
- inference: `keras_detector_load`, `KerasDetector` (predict, tf.GradientTape Grad-CAM), fp16 `model.keras`.
- importer: validate a foreign `.keras` binary classifier and make a bundle of it, calibrated on a split.
- train: `keras_mobilenet_train`, the same split, canonical path, augmentation and calibration as the others.
- proxy: the same Detector interface over a spawned TensorFlow process (no TensorFlow in the caller).
"""
