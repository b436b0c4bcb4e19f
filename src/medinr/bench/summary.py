"""Markdown summary of a ``medinr bench`` results file, for the README's results section.

``python -m medinr.bench.summary results/*.json`` prints, per data set: each codec's mean
rate-distortion points and its BD-rate / BD-PSNR against the anchor (mean over images, and on the
mean curves; sets of sequences, e.g. cine-test, also Mbps, temporal flicker and every sequence anchor),
so the README's numbers always come from a committed results file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from medinr.bench.bdrate import WINDOW_LABEL


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None or isinstance(value, str) else format(value, spec)


def _bd_cells(bd: dict[str, Any], name: str) -> list[str]:
    s = bd["per_codec"].get(name)
    if s is None:
        return ["anchor", "", "", ""]
    window = s.get("bd_rate_window_percent") or {"mean": None, "count": 0}
    return [f"{_fmt(s['bd_rate_percent']['mean'], '+.1f')} ({s['images_with_bd_rate']} img)",
            f"{_fmt(window['mean'], '+.1f')} ({window['count']} img)",
            _fmt(s["bd_psnr_db"]["mean"], "+.2f"), _fmt((s.get("mean_curves") or {}).get("bd_rate_percent"), "+.1f")]


def markdown(document: dict[str, Any], source: str) -> str:
    """The summary of one results document; ``source`` names the file in the text. A set of sequences also
    lists Mbps and temporal flicker per rate point and its BD numbers against every sequence anchor."""
    cfg = document["config"]
    lines = [f"From `{source}` (`medinr bench {' '.join(cfg.get('datasets') or [])}`, codecs "
             f"{', '.join(cfg['codecs'])}; crop {cfg.get('crop')}, preset {cfg.get('preset')}; "
             f"{document['machine'].get('cpus')} CPU cores, {document.get('elapsed_seconds', 0) / 60:.0f} min).", ""]
    for name, dataset in document["datasets"].items():
        sets = dataset.get("bd_vs_anchors") or [dataset["bd_vs_anchor"]]
        video = dataset.get("kind") == "sequences"
        header = ["codec", "sequences" if video else "images", "bpp (mean per rate point)", "PSNR dB (same points)"]
        if video:
            header += ["Mbps (same points)", "flicker (same points)"]
            lines.append(f"**{name}** ({len(dataset['images'])} sequences, first {cfg.get('sequence_frames') or 'all'} "
                         f"frames, crop {cfg.get('sequence_crop') or cfg.get('crop')}), BD vs "
                         f"{' and '.join(bd['anchor'] for bd in sets)} (PSNR over each sequence's range):")
        else:
            lines.append(f"**{name}** ({len(dataset['images'])} images), BD vs {sets[0]['anchor']} "
                         "(PSNR over each image's range):")
        for bd in sets:
            suffix = f" vs {bd['anchor']}" if len(sets) > 1 else ""
            header += [f"BD-rate % (mean over images){suffix}", f"BD-rate % inside {WINDOW_LABEL}{suffix}",
                       f"BD-PSNR dB{suffix}", f"BD-rate % (mean curves){suffix}"]
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for codec in dataset["codecs"]:
            r = codec["results"]
            missing = codec.get("unsupported", 0) + codec.get("unavailable", 0) + codec.get("errors", 0)
            count = f"{codec['images']}" + (f" ({missing} not coded)" if missing else "")
            cells = [codec["name"], count, ", ".join(_fmt(b, ".3f") for b in r["bpp"]),
                     ", ".join(_fmt(p, ".2f") for p in r["psnr"])]
            if video:
                cells += [", ".join(_fmt(v, ".3f") for v in r.get("mbps", [])),
                          ", ".join(_fmt(v, ".2f") for v in r.get("temporal_flicker", []))]
            for bd in sets:
                cells += _bd_cells(bd, codec["name"])
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    for path in argv if argv is not None else sys.argv[1:]:
        print(markdown(json.loads(Path(path).read_text()), path))


if __name__ == "__main__":
    main()
