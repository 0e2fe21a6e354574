"""PNG text chunks that image generators write (prompts, workflows, parameters)."""

from __future__ import annotations

from collections.abc import Sequence

from provenance.findings import Finding, shorten
from provenance.names import generator_text_reason, software_finding

# PNG text keys that only image generators write.
_GENERATOR_PNG_KEYS: dict[str, str] = {
    "parameters": "Stable Diffusion web UI generation parameters",
    "prompt": "ComfyUI prompt graph",
    "workflow": "ComfyUI workflow",
    "invokeai_metadata": "InvokeAI generation metadata",
    "invokeai_graph": "InvokeAI graph",
    "sd-metadata": "InvokeAI generation metadata",
    "Dream": "InvokeAI (dream) generation command",
}


# Free-form keys checked for generator names (NovelAI writes Software/Source/Comment).
_FREE_TEXT_PNG_KEYS = frozenset({"Comment", "Description", "Source", "Title", "Author"})


def png_text_findings(*, chunks: Sequence[tuple[str, str]]) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[str] = set()
    for key, text in chunks:
        if key in seen:  # one finding per key is enough; repeats are noise or padding
            continue
        if key in _GENERATOR_PNG_KEYS and text.strip():
            seen.add(key)
            findings.append(
                Finding(
                    kind="png_text",
                    key=key,
                    value=shorten(text),
                    suggests="ai",
                    detail=f"PNG text chunk '{key}' holds {_GENERATOR_PNG_KEYS[key]}, written by image generators.",
                )
            )
        elif key == "Software":
            seen.add(key)
            findings.append(software_finding(kind="png_text", key=key, text=text, label="PNG Software"))
        elif key in _FREE_TEXT_PNG_KEYS and (reason := generator_text_reason(text=text)):
            seen.add(key)
            findings.append(
                Finding(
                    kind="png_text",
                    key=key,
                    value=shorten(text),
                    suggests="ai",
                    detail=f"PNG text chunk '{key}' {reason}.",
                )
            )
    return findings
