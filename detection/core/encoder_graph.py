"""Derive a float graph, computed alike on every CPU, from a dynamically quantized ONNX encoder.

The shipped CLIP encoder quantizes each layer's activations to u8 at run time and multiplies them by s8
weights with `MatMulInteger`. Measured (benchmarks/encoder_variants.py; AVX2 emulated with
`qemu-x86_64 -cpu Haswell`, reference: this graph on an AVX-512 VNNI CPU, where its kernel is exact):

- the int8 graph as shipped: cosine 0.44-0.51 on an AVX2 CPU, whose u8 x s8 kernel saturates;
- weights re-quantized to u8: 0.98; every `MatMulInteger` rewritten as exact integer math in fp32: 0.98.
  Run-time activation quantization itself amplifies the last-bit differences of the float kernels
  (attention, layer norm) of two CPUs into whole quantization steps, layer after layer;
- the weights dequantized and activations kept in float (this module): cosine 1.0000 between the two CPUs.

So `graph_float` replaces each `DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales)` chain by one
`MatMul` of the float activations with the dequantized weights. The weights stay int8 in the file
(90 MB), with their zero points and scales; onnxruntime folds `(w - zero_point) * scale` into fp32 tensors
when it loads the graph. A probe trained on the int8 graph's embeddings must be refitted on these.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

DERIVATION = (
    "int8 weights dequantized to float ((w - zero point) * scale, folded by onnxruntime at load) and activations "
    "kept in float: every DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul chain becomes one fp32 MatMul "
    "(detection.core.encoder_graph.graph_float)"
)


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {output: node for node in graph.node for output in node.output}


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def _only_consumer(consumers: dict[str, list[onnx.NodeProto]], name: str, op_type: str) -> onnx.NodeProto:
    found = consumers.get(name, [])
    if len(found) != 1 or found[0].op_type != op_type:
        raise ValueError(f"{name}: expected one {op_type} after it, found {[node.op_type for node in found]}")
    return found[0]


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes and initializers that no longer lead to a graph output."""
    needed = {output.name for output in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(output in needed for output in node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def graph_float(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` where each dynamically quantized matrix product is a float MatMul."""
    derived = onnx.ModelProto()
    derived.CopyFrom(model)
    graph = derived.graph
    producers, consumers = _producers(graph), _consumers(graph)
    initializers = {init.name for init in graph.initializer}
    replaced: dict[str, onnx.NodeProto] = {}  # output of the chain's last Mul -> the MatMul that replaces it
    new_nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        activations, weights, _, weights_zero = node.input
        quantize = producers[activations]
        if quantize.op_type != "DynamicQuantizeLinear" or weights not in initializers:
            raise ValueError(f"{node.name}: not a dynamically quantized product with constant weights")
        cast = _only_consumer(consumers, node.output[0], "Cast")
        rescale = _only_consumer(consumers, cast.output[0], "Mul")
        scales = producers[rescale.input[1]]  # Mul(activation scale, weight scale)
        if scales.op_type != "Mul" or scales.input[0] != quantize.output[1] or scales.input[1] not in initializers:
            raise ValueError(f"{node.name}: unexpected rescaling {scales.op_type}{list(scales.input)}")
        weights_scale = scales.input[1]
        prefix = node.name
        dequantized = f"{prefix}/weights_float"
        new_nodes += [
            helper.make_node("Cast", [weights], [f"{prefix}/w"], to=TensorProto.FLOAT, name=f"{prefix}/w"),
            helper.make_node("Cast", [weights_zero], [f"{prefix}/w0"], to=TensorProto.FLOAT, name=f"{prefix}/w0"),
            helper.make_node("Sub", [f"{prefix}/w", f"{prefix}/w0"], [f"{prefix}/wc"], name=f"{prefix}/wc"),
            helper.make_node("Mul", [f"{prefix}/wc", weights_scale], [dequantized], name=dequantized),
        ]
        replaced[rescale.output[0]] = helper.make_node(
            "MatMul", [quantize.input[0], dequantized], list(rescale.output), name=f"{prefix}/float"
        )
    if not replaced:
        raise ValueError("the graph has no dynamically quantized MatMulInteger to replace")
    # The dequantizing nodes read initializers only, so putting them first keeps the order topological.
    nodes = new_nodes + [replaced.get(node.output[0], node) if node.op_type == "Mul" else node for node in graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    _prune(graph)
    onnx.checker.check_model(derived)
    return derived


def encoder_derive(*, source: Path, destination: Path) -> Path:
    """Write the float graph of the ONNX file `source` to `destination` (atomically)."""
    derived = graph_float(onnx.load(str(source)))
    destination = Path(destination)
    partial = destination.with_suffix(".partial")
    partial.write_bytes(derived.SerializeToString())
    partial.replace(destination)
    return destination
