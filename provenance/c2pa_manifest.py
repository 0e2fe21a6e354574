"""C2PA manifests: signed claims, their generator and actions; nothing fetched from the network."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import c2pa

from provenance.findings import Finding, shorten
from provenance.names import software_finding, source_type

_C2PA_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


_UNTRUSTED = "signingCredential.untrusted"


def c2pa_findings(*, data: bytes, mime: str) -> list[Finding]:
    with c2pa.Context.from_dict(_C2PA_SETTINGS) as context:
        try:
            reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, context)
        except c2pa.C2paError as exc:
            # Fetching is disabled, so a manifest that lives at a URL surfaces as an error.
            if not str(exc).startswith("Remote:"):
                raise
            return [_remote_manifest_finding(message=str(exc))]
        if reader is None:
            return []
        with reader:
            store = json.loads(reader.json())
    return _c2pa_store_findings(store=store)


def _remote_manifest_finding(*, message: str) -> Finding:
    return Finding(
        kind="c2pa",
        key="c2pa.remote_manifest",
        value=shorten(message.rsplit(" ", 1)[-1]),  # the message ends with the URL
        suggests="neutral",
        detail="The file points to a remote C2PA manifest; remote manifests are never fetched or checked.",
    )


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _c2pa_store_findings(*, store: dict[str, Any]) -> list[Finding]:
    manifests = store.get("manifests") if isinstance(store.get("manifests"), dict) else {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) if isinstance(manifests.get(active_label), dict) else {}
    codes = [str(status.get("code")) for status in _dicts(store.get("validation_status"))]
    state = str(store.get("validation_state") or ("Invalid" if set(codes) - {_UNTRUSTED} else "Valid"))
    signer = _c2pa_signer(manifest=active)
    if state == "Trusted":
        verdict = "the signature is valid and the signer is on the trust list"
    elif state == "Valid":
        verdict = (
            "the signature is intact but the signing certificate is not on a trust list, so the signer is unverified"
        )
    else:
        verdict = (
            f"the manifest FAILED validation ({', '.join(codes) or 'no codes'}): file or manifest altered or forged"
        )

    findings = [
        Finding(
            kind="c2pa",
            key="c2pa.signature",
            value=shorten(f"{state}: {', '.join(codes)}" if codes else state),
            suggests="neutral",
            detail=f"C2PA manifest signed by {signer}; {verdict}.",
        )
    ]
    generator = _c2pa_generator(manifest=active)
    if generator:
        findings.append(
            software_finding(kind="c2pa", key="c2pa.claim_generator", text=generator, label="The C2PA claim generator")
        )
    # Ingredient manifests matter: an AI image later edited in Photoshop carries
    # the generator's declaration only in the ingredient's manifest.
    scopes = [("c2pa.actions", active)] + [
        ("c2pa.ingredient.actions", manifest)
        for label, manifest in manifests.items()
        if label != active_label and isinstance(manifest, dict)
    ]
    for key_prefix, manifest in scopes:
        for action in _c2pa_actions(manifest=manifest):
            findings.append(
                _c2pa_action_finding(
                    action=action,
                    key=f"{key_prefix}.digitalSourceType",
                    signer=signer,
                    verdict=verdict,
                    invalid=state == "Invalid",
                )
            )
    return findings


def _c2pa_signer(*, manifest: dict[str, Any]) -> str:
    info = manifest.get("signature_info") if isinstance(manifest.get("signature_info"), dict) else {}
    name, issuer = str(info.get("common_name") or ""), str(info.get("issuer") or "")
    if name and issuer and issuer != name:
        return shorten(f"{name} ({issuer})", limit=200)
    return shorten(name or issuer or "an unnamed signer", limit=200)


def _c2pa_generator(*, manifest: dict[str, Any]) -> str:
    infos = _dicts(manifest.get("claim_generator_info"))
    if infos:
        return " ".join(str(infos[0].get(part)) for part in ("name", "version") if infos[0].get(part))
    return str(manifest.get("claim_generator") or "")


def _c2pa_actions(*, manifest: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Actions carrying a digitalSourceType, from c2pa.actions (v1) and c2pa.actions.v2."""
    for assertion in _dicts(manifest.get("assertions")):
        data = assertion.get("data")
        if not str(assertion.get("label", "")).startswith("c2pa.actions") or not isinstance(data, dict):
            continue
        for action in _dicts(data.get("actions")):
            parameters = action.get("parameters") if isinstance(action.get("parameters"), dict) else {}
            # v1 writers sometimes put the source type inside "parameters".
            if action.get("digitalSourceType") or parameters.get("digitalSourceType"):
                yield action


def _c2pa_action_finding(*, action: dict[str, Any], key: str, signer: str, verdict: str, invalid: bool) -> Finding:
    parameters = action.get("parameters") if isinstance(action.get("parameters"), dict) else {}
    value = str(action.get("digitalSourceType") or parameters.get("digitalSourceType"))
    suggests, code = source_type(value=value)
    if invalid and suggests == "camera":
        suggests = "neutral"  # a broken signature cannot vouch for a capture
    agent = action.get("softwareAgent")
    agent_name = str(agent.get("name", "")) if isinstance(agent, dict) else str(agent or "")
    via = f" via {shorten(agent_name, limit=100)}" if agent_name else ""
    action_name = shorten(str(action.get("action")), limit=60)
    scope = "An ingredient's C2PA manifest" if ".ingredient." in key else "C2PA manifest"
    return Finding(
        kind="c2pa",
        key=key,
        value=shorten(value),
        suggests=suggests,
        detail=f"{scope} signed by {signer} declares {code} (action {action_name}{via}); {verdict}.",
    )
