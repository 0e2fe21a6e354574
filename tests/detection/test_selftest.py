"""Golden-output self-test and the float encoder graph: a model that computes differently is refused."""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from detection.core.encoder_graph import encoder_derive, graph_float
from detection.core.inference import Detector, detector_load
from detection.core.selftest import (
    GOLDEN_FILE,
    SelfTestFailed,
    golden_check,
    golden_inputs,
    golden_write,
    platform_description,
)

SHIPPED = Path(__file__).resolve().parents[2] / "detection" / "weights"
DEFAULT_MODEL = "clip_probe_aug"


def matmul_integer_count(model) -> int:
    return sum(node.op_type == "MatMulInteger" for node in model.graph.node)


def test_golden_inputs_are_the_same_on_every_call_and_differ_from_each_other():
    first, second = golden_inputs(size=40), golden_inputs(size=40)
    assert first.dtype == np.uint8 and first.shape == (4, 40, 40, 3)
    assert np.array_equal(first, second)
    assert len({image.tobytes() for image in first}) == 4
    assert all(image.std() > 20 for image in first)  # not flat: every layer sees texture


def test_a_model_reproducing_its_golden_outputs_passes(tiny_card, weights_dir: Path):
    golden = golden_write(directory=weights_dir / "tiny", detector=detector_load(weights_dir=weights_dir, name="tiny"))
    assert set(golden["outputs"]) == {"logits", "probabilities"}
    assert list(golden["files_sha256"]) == ["model.safetensors"]
    golden_check(directory=weights_dir / "tiny", detector=detector_load(weights_dir=weights_dir, name="tiny"))


def test_a_model_whose_numbers_drift_is_refused_with_the_machine_in_the_message(tiny_card, weights_dir: Path):
    detector = detector_load(weights_dir=weights_dir, name="tiny")
    golden_write(directory=weights_dir / "tiny", detector=detector)
    with torch.no_grad():  # what a wrong kernel does: same file, other numbers
        detector.model.classifier[-1].weight.mul_(1.5)
    with pytest.raises(SelfTestFailed) as refused:
        golden_check(directory=weights_dir / "tiny", detector=detector)
    message = str(refused.value)
    assert "model tiny" in message and "refused on this machine" in message
    assert "logit margin off by" in message
    assert f"torch {metadata.version('torch')}" in message and "avx2" in message.lower()
    assert platform_description() in message


def test_golden_outputs_made_for_other_weights_are_refused(tiny_card, weights_dir: Path, tmp_path: Path):
    bundle = tmp_path / "tiny"
    shutil.copytree(weights_dir / "tiny", bundle)
    golden_write(directory=bundle, detector=detector_load(weights_dir=tmp_path, name="tiny"))
    from safetensors.torch import load_file, save_file

    model_file = bundle / "model.safetensors"
    state = load_file(str(model_file))
    first = next(key for key, value in state.items() if value.is_floating_point())
    state[first] = state[first] + 0.01  # retrained weights, golden file left behind
    save_file(state, str(model_file))
    with pytest.raises(SelfTestFailed, match=r"made for other weights; regenerate it with `manage\.py detector_golden"):
        golden_check(directory=bundle, detector=detector_load(weights_dir=tmp_path, name="tiny"))
    (bundle / GOLDEN_FILE).unlink()
    with pytest.raises(SelfTestFailed, match="has no golden outputs"):
        golden_check(directory=bundle, detector=detector_load(weights_dir=tmp_path, name="tiny"))


def _quantized_matmul(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A float MatMul graph, dynamically quantized by onnxruntime's own tool (the shipped encoder's pattern)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 32])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "float.onnx")
    quantize_dynamic(tmp_path / "float.onnx", tmp_path / "int8.onnx", weight_type=QuantType.QInt8, per_channel=True)
    return tmp_path / "int8.onnx", weights


def test_the_float_graph_multiplies_float_activations_by_the_dequantized_weights(tmp_path: Path):
    int8_path, weights = _quantized_matmul(tmp_path)
    quantized = onnx.load(int8_path)
    assert matmul_integer_count(quantized) == 1
    derived_path = encoder_derive(source=int8_path, destination=tmp_path / "derived.onnx")
    derived = onnx.load(derived_path)
    assert matmul_integer_count(derived) == 0
    assert not [node for node in derived.graph.node if node.op_type == "DynamicQuantizeLinear"]

    inits = {init.name: numpy_helper.to_array(init) for init in quantized.graph.initializer}
    q = next(v for k, v in inits.items() if v.dtype == np.int8 and v.ndim == 2)
    zero = next(v for k, v in inits.items() if v.dtype == np.int8 and v.ndim == 1)
    scale = next(v for k, v in inits.items() if v.dtype == np.float32 and v.shape == (32,))
    dequantized = (q.astype(np.float32) - zero) * scale
    x = np.random.default_rng(1).normal(size=(5, 64)).astype(np.float32)
    y = onnxruntime.InferenceSession(str(derived_path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, x @ dequantized, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, x @ weights, rtol=0.02, atol=0.3)  # still the layer it quantized


def test_a_graph_without_quantized_products_is_refused():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    with pytest.raises(ValueError, match="no dynamically quantized"):
        graph_float(helper.make_model(graph))


def _default_detector() -> Detector:
    card = json.loads((SHIPPED / DEFAULT_MODEL / "card.json").read_text())
    if not (SHIPPED / DEFAULT_MODEL / card["encoder_file"]).is_file():
        pytest.fail("the CLIP encoder is not installed: run the README's test command (./dev test)")
    return detector_load(weights_dir=SHIPPED, name=DEFAULT_MODEL)


def test_the_shipped_default_passes_its_self_test_on_this_machine():
    detector = _default_detector()
    golden_check(directory=SHIPPED / DEFAULT_MODEL, detector=detector)


def test_a_perturbed_encoder_is_caught_by_the_shipped_defaults_self_test():
    detector = _default_detector()
    encoder = onnx.load(str(SHIPPED / DEFAULT_MODEL / detector.card.encoder_file))
    # One block's layer norm off by 30 %, much as a saturating kernel distorts one layer's output.
    target = next(
        init for init in encoder.graph.initializer if init.name == "vision_model.encoder.layers.5.layer_norm1.weight"
    )
    values = numpy_helper.to_array(target) * 1.3
    target.CopyFrom(numpy_helper.from_array(values.astype(np.float32), target.name))
    detector.model.encoder.session = onnxruntime.InferenceSession(
        encoder.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    with pytest.raises(SelfTestFailed, match=f"model {DEFAULT_MODEL} .* refused on this machine"):
        golden_check(directory=SHIPPED / DEFAULT_MODEL, detector=detector)
