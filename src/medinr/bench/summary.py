"""Markdown summary of a ``medinr bench`` results file, for the README's results section.

``python -m medinr.bench.summary results/*.json`` prints, per data set: each codec's mean
rate-distortion points and its BD-rate / BD-PSNR against the anchor (mean over images, and on the
mean curves), so the README's numbers always come from a committed results file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None or isinstance(value, str) else format(value, spec)


def markdown(document: dict[str, Any], source: str) -> str:
    """The summary of one results document; ``source`` names the file in the text."""
    cfg = document["config"]
    lines = [f"From `{source}` (`medinr bench {' '.join(cfg.get('datasets') or [])}`, codecs "
             f"{', '.join(cfg['codecs'])}; crop {cfg.get('crop')}, preset {cfg.get('preset')}; "
             f"{document['machine'].get('cpus')} CPU cores, {document.get('elapsed_seconds', 0) / 60:.0f} min).", ""]
    for name, dataset in document["datasets"].items():
        bd = dataset["bd_vs_anchor"]
        lines += [f"**{name}** ({len(dataset['images'])} images), BD vs {bd['anchor']} (PSNR over each image's range):",
                  "", "| codec | images | bpp (mean per rate point) | PSNR dB (same points) | BD-rate % (mean over images) | "
                  "BD-PSNR dB | BD-rate % (mean curves) |", "|---|---|---|---|---|---|---|"]
        for codec in dataset["codecs"]:
            r = codec["results"]
            points = ", ".join(f"{b:.3f}" for b in r["bpp"])
            psnrs = ", ".join(_fmt(p, ".2f") for p in r["psnr"])
            s = bd["per_codec"].get(codec["name"])
            if s is None:
                cells = ["anchor", "", ""]
            else:
                cells = [f"{_fmt(s['bd_rate_percent']['mean'], '+.1f')} ({s['images_with_bd_rate']} img)",
                         _fmt(s["bd_psnr_db"]["mean"], "+.2f"),
                         _fmt((s.get("mean_curves") or {}).get("bd_rate_percent"), "+.1f")]
            lines.append(f"| {codec['name']} | {codec['images']} | {points} | {psnrs} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    for path in argv if argv is not None else sys.argv[1:]:
        print(markdown(json.loads(Path(path).read_text()), path))


if __name__ == "__main__":
    main()
