"""AI-image detection core (no Django imports; importable and testable alone). PyTorch, except `keras/`
(TensorFlow, never imported beside torch) and the framework-free modules both share: card (`ModelCard`, the
typed card.json), files (card_load/card_save, checksums, files from pinned wheels), registry, preprocess,
transforms, caches, data, run_settings, metrics, scoring (batching, verdicts, heatmap overlay), loading (open a
bundle of either kind), evaluate.

- preprocess: `image_decode(data) -> PIL.Image` (RGB, EXIF-oriented, ValueError if undecodable);
  `image_canonical(img, *, size)` the one path for every image (Lanczos short side -> size, centre crop,
  JPEG at fixed quality) so size and codec carry no class signal; `images_to_tensor(images, *, size)`.
- registry: `architecture_get(arch) -> Architecture` (framework, default image size and input scale, fine-tune
  parts, heatmap method `GRAD_CAM` or `OCCLUSION` with its layers and default), `ARCHITECTURES` (trainable),
  `heatmap_layer_names(card)`, `heatmap_default_layer(card)`: plain data, no torch import, for web processes;
  each architecture names the loader `loading.detector_open` opens its bundles with.
- card: `ModelCard.from_dict(d)` / `.to_dict()` (exact round trip; unknown keys in `.extra`), `Thresholds`;
  a changed card is a new value (`dataclasses.replace`).
- nets: `net_build(arch, *, directory=None, card=None, head="own")` (each PyTorch architecture's builder,
  weights=None; `head="seed"` or a card's `head` puts the seed's Keras head on it),
  `gradcam_layers(model, arch) -> dict[str, nn.Module]`, `net_finetune_set`.
- transforms: `image_augment` (training re-shoot); caches: `arrays_cache`, `embeddings_cache`, `embeddings_arrays`.
- bundle: `<weights_dir>/<name>/{model.safetensors (fp16), card.json}`; `bundle_save(*, directory, model,
  card)`, `bundle_load(*, directory) -> (model, ModelCard)`.
- inference: `detector_load(*, weights_dir, name, device="cpu", threads=None) -> Detector` (raises
  `NoTrainedWeights("no trained weights for <name>")`); `Detector.name/.version/.card`,
  `.predict(images) -> list[float]` (AI probability), `.verdict(p) -> "ai" | "uncertain" | "real"`,
  `.overlay(image, *, layer=None) -> bytes` (PNG Grad-CAM overlay), `.heatmap(image, *, layer=None)`.
- data: `Sample`, `split_make`, `split_save`, `split_load` (grouped, stratified, held-out sources).
- train: `train_run(*, arch, train, val, out_dir, name, epochs, image_size, ...) -> ModelCard`; run_settings:
  `RunSettings`, what it and keras.train's `keras_mobilenet_train` both take, their steps' one argument.
- evaluate: `evaluate_run(*, detector, split, out_dir) -> report dict` (+ report.json, and report.html from
  templates/report.html).
- scan: `paths_detect(*, detector, paths)` yields one result dict per image file (errors included).
- onnx_engine: `onnx_export(*, directory)`, `onnx_detector_load(*, weights_dir, name) -> OnnxDetector`.
- tae: the TAESD family's tiny autoencoders (five generators' VAE twins) from ../shared/generators/tae,
  sha256-checked and loaded strictly; `roundtrip(image, decoder_name) -> tensor in [0, 1]`, `DECODERS`.
- aligned: `pairs_make(*, out, folders, ...)` writes each genuine photo beside its round trip (same crop and
  JPEG, same group) as a data folder.
- clip_probe: arch "clip_probe", a linear probe on a frozen CLIP ViT-B/16 encoder (ONNX, sha256-checked);
  loads through the same `detector_load`; its heatmap (layer "occlusion") is an occlusion map. clip_train:
  `clip_probe_train`, `probe_fit`.
- crossval: the leave-source-out `Protocol`, `crossval_run` (thresholds from inner folds), `outer_scores` and
  `ranking_report` (one model per fold, ranking figures only); cnn_study: `cnn_fit_for`, a CNN fine-tuned per
  fold for `outer_scores`; study: the CLIP-feature levers over that protocol.
"""
