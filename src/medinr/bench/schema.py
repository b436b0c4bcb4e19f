"""The results file's schema (a JSON-Schema subset, as a dict) and a structural validator for it.

The validator understands ``type`` (one name or a list), ``properties``, ``required``, ``items``,
``additionalProperties`` (a schema) and ``enum``; a ``number`` may also be one of the strings "inf",
"-inf", "nan", which is how the results writer stores non-finite values.
"""

from __future__ import annotations

from typing import Any

NUMBER = {"type": "number"}
NUMBER_OR_NULL = {"type": ["number", "null"]}
STRING_OR_NULL = {"type": ["string", "null"]}
RANGE = {"type": ["array", "null"], "items": NUMBER}

POINT = {
    "type": "object",
    "required": ["rate", "rate_index", "bpp", "psnr", "psnr_bits", "ms_ssim", "ms_ssim_method", "rmse", "max_abs_error",
                 "compression_ratio", "lpips", "encode_seconds", "decode_seconds"],
    "properties": {
        "rate": NUMBER, "rate_index": {"type": "integer"}, "bpp": NUMBER, "psnr": NUMBER, "psnr_bits": NUMBER,
        "ms_ssim": NUMBER,
        "ms_ssim_method": {"type": "string"}, "rmse": NUMBER, "max_abs_error": NUMBER, "compression_ratio": NUMBER,
        "lpips": {"type": ["number", "string"]}, "encode_seconds": NUMBER, "decode_seconds": NUMBER,
        "model": {"type": "object", "required": ["parameters", "model_bytes"],
                  "properties": {"parameters": NUMBER_OR_NULL, "model_bytes": NUMBER}},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "bitstream_b64": {"type": "string"},
        # sequences (the runner writes all of them on every point of a sequence)
        "mbps": NUMBER, "fps": NUMBER, "fps_assumed": {"type": "boolean"}, "frames": {"type": "integer"},
        "psnr_per_frame": {"type": "array", "items": NUMBER}, "psnr_mean_frames": NUMBER,
        "ms_ssim_per_frame": {"type": "array", "items": NUMBER}, "temporal_flicker": NUMBER,
        "encode_seconds_per_frame": NUMBER, "decode_ms_per_frame": NUMBER,
    },
}

ENTRY = {
    "type": "object",
    "required": ["status", "reason", "points", "seconds"],
    "properties": {"status": {"enum": ["done", "unsupported", "unavailable", "error"]}, "reason": STRING_OR_NULL,
                   "points": {"type": "array", "items": POINT}, "seconds": NUMBER,
                   "notes": {"type": "array", "items": {"type": "string"}}},
}

BD = {
    "type": "object",
    "required": ["bd_rate_percent", "bd_rate_overlap_psnr_db", "bd_rate_reason", "bd_psnr_db", "bd_psnr_overlap_bpp",
                 "bd_psnr_reason", "notes"],
    "properties": {"bd_rate_percent": NUMBER_OR_NULL, "bd_rate_overlap_psnr_db": RANGE,
                   "bd_rate_reason": STRING_OR_NULL,
                   "bd_psnr_db": NUMBER_OR_NULL, "bd_psnr_overlap_bpp": RANGE, "bd_psnr_reason": STRING_OR_NULL,
                   "bd_rate_window_percent": NUMBER_OR_NULL, "bd_rate_window_psnr_db": RANGE,
                   "bd_rate_window_reason": STRING_OR_NULL,
                   "notes": {"type": "array", "items": {"type": "string"}}},
}

STATS = {"type": "object", "required": ["mean", "median", "count"],
         "properties": {"mean": NUMBER_OR_NULL, "median": NUMBER_OR_NULL, "count": {"type": "integer"}}}

SET_BD = {
    "type": "object",
    "required": ["anchor", "per_codec"],
    "properties": {
        "anchor": {"type": "string"},
        "per_codec": {"type": "object", "additionalProperties": {
            "type": "object",
            "required": ["images", "images_with_bd_rate", "bd_rate_percent", "bd_psnr_db", "mean_bd_rate_percent",
                         "per_image_overlap_psnr_db", "mean_curves", "mean_curves_images"],
            "properties": {"images": {"type": "integer"}, "images_with_bd_rate": {"type": "integer"},
                           "bd_rate_percent": STATS, "bd_psnr_db": STATS, "mean_bd_rate_percent": NUMBER_OR_NULL,
                           "bd_rate_window_percent": STATS, "window_psnr_db": RANGE,
                           "per_image_overlap_psnr_db": RANGE,
                           "mean_curves": {"type": ["object", "null"], **{k: v for k, v in BD.items() if k != "type"}},
                           "mean_curves_images": {"type": "integer"}}}},
    },
}

_SERIES = {"type": "array", "items": {"type": ["number", "string", "null"]}}
COMPRESSAI = {
    "type": "object",
    "required": ["name", "description", "results", "images", "unsupported", "errors"],
    "properties": {
        "name": {"type": "string"}, "description": {"type": "string"}, "images": {"type": "integer"},
        "unsupported": {"type": "integer"}, "unavailable": {"type": "integer"}, "errors": {"type": "integer"},
        "results": {"type": "object",
                    "required": ["rate", "rate_index", "bpp", "psnr", "psnr_bits", "ms-ssim", "rmse", "max_abs_error",
                                 "lpips",
                                 "compression_ratio", "encoding_time", "decoding_time", "model_parameters"],
                    "additionalProperties": _SERIES},
    },
}

RECORD = {
    "type": "object",
    "required": ["id", "dataset", "paths", "select", "codecs", "bd_vs_anchor"],
    "properties": {
        "id": {"type": "string"}, "dataset": {"type": "string"}, "kind": {"enum": ["image", "sequence"]},
        "paths": {"type": "array", "items": {"type": "string"}}, "select": STRING_OR_NULL,
        "shape": {"type": "array", "items": {"type": "integer"}}, "dtype": {"type": "string"},
        "bits_stored": {"type": "integer"}, "signed": {"type": "boolean"}, "value_range": RANGE,
        "frames": {"type": "integer"}, "fps": NUMBER, "fps_assumed": {"type": "boolean"},
        "codecs": {"type": "object", "additionalProperties": ENTRY},
        "anchor": {"type": "string"},
        "bd_vs_anchor": {"type": "object", "additionalProperties": BD},
        "bd_vs_anchors": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": BD}},
        "flicker_vs_anchor": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"type": "array", "items": NUMBER_OR_NULL}}},
    },
}

RESULTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["medinr_bench_version", "config", "preprocessing", "machine", "metrics_info", "not_built",
                 "elapsed_seconds", "codecs", "bd_rate_vs_anchor", "datasets", "images"],
    "properties": {
        "medinr_bench_version": {"enum": [2]},
        "config": {"type": "object", "required": ["codecs", "anchor", "medinr_bpps", "preset", "crop", "resize",
                                                  "frames", "quick", "jobs"]},
        "preprocessing": {"type": "string"},
        "machine": {"type": "object"},
        "metrics_info": {"type": "object", "required": ["psnr", "psnr_bits", "ms-ssim", "lpips"],
                         "additionalProperties": {"type": "string"}},
        "not_built": {"type": "object", "additionalProperties": {"type": "string"}},
        "elapsed_seconds": NUMBER,
        "codecs": {"type": "array", "items": COMPRESSAI},
        "bd_rate_vs_anchor": SET_BD,
        "datasets": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["images", "codecs", "bd_vs_anchor"],
            "properties": {"kind": {"enum": ["images", "sequences"]},
                           "images": {"type": "array", "items": {"type": "string"}},
                           "codecs": {"type": "array", "items": COMPRESSAI}, "bd_vs_anchor": SET_BD,
                           "bd_vs_anchors": {"type": "array", "items": SET_BD}}}},
        "images": {"type": "array", "items": RECORD},
    },
}

_NON_FINITE = ("inf", "-inf", "nan")


def _is(value: Any, kind: str) -> bool:
    if kind == "number":
        return (isinstance(value, (int, float)) and not isinstance(value, bool)) or value in _NON_FINITE
    checks = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, checks[kind])


def validate(value: Any, schema: dict[str, Any] = RESULTS_SCHEMA, where: str = "$") -> list[str]:
    """Every way ``value`` departs from ``schema``, as ``path: problem`` lines (empty when it conforms)."""
    errors: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            return [f"{where}: expected {' or '.join(kinds)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        errors += [f"{where}: missing {key!r}" for key in schema.get("required", []) if key not in value]
        properties = schema.get("properties", {})
        for key, item in value.items():
            sub = properties.get(key, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                errors += validate(item, sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{where}[{i}]")
    return errors
