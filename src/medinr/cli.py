"""Command line: ``medinr encode / decode / info / bench / report / demo``.

Every failure a user can cause ends in one line on stderr (``medinr: error: ...``) and a non-zero
exit code; output files are written to a temporary name and renamed, so none is left half-written.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from medinr.errors import InputError, MedinrError

PRESETS = ("fast", "balanced", "max")


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"medinr: error: {message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Turns medinr errors (and unreadable paths) into one-line messages with exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # click's own control flow: --help, usage errors
        except MedinrError as exc:
            _fail(str(exc), exc.exit_code)
        except (OSError, MemoryError) as exc:
            _fail(f"{type(exc).__name__}: {exc}", 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as exc:  # a bug, not a user error: say so in one line; MEDINR_DEBUG=1 shows the trace
            if os.environ.get("MEDINR_DEBUG"):
                raise
            _fail(f"internal error ({type(exc).__name__}: {exc}); rerun with MEDINR_DEBUG=1 and report it", 1)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar fed by (stage, done, total) callbacks; nothing when quiet."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=1, default=str))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="medinr")
def main() -> None:
    """medinr: compress medical images with implicit neural representations."""


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output .minr file.")
@click.option("--bpp", type=float, help="Target size in bits per pixel (whole file).")
@click.option("--psnr", type=float, help="Smallest file reaching this PSNR (dB, peak = image max - min).")
@click.option("--preset", type=click.Choice(PRESETS), default="balanced", show_default=True)
@click.option("--modality", type=click.Choice(["auto", "cxr", "mri", "cine", "ct", "generic"]), default="auto",
              show_default=True)
@click.option("--arch", type=str, default=None,
              help="auto (default: measured choice per modality, grid-wavelet for still images; grid-video for a "
                   "timed series), grid-wavelet, grid, seed, seed-video, grid-video, grid-mc.")
@click.option("--slice", "slice_spec", type=str, default=None, help="AXIS:INDEX of a volume, e.g. 2:90.")
@click.option("--luma", is_flag=True,
              help="Read a colour DICOM (ultrasound RGB or YBR) as its luma and code that; the colour (overlays, "
                   "Doppler) is not kept.")
@click.option("--keep-metadata/--strip-metadata", default=True, show_default=True,
              help="Store the source DICOM attributes (patient/study/series) in the file.")
@click.option("--steps", type=int, default=None,
              help="Override the preset's fitting steps (grid, grid-video: steps for 256x256 frames, scaled by size).")
@click.option("--max-error", type=click.IntRange(min=0), default=None,
              help="Near-lossless: every stored value within this of the source (0 = lossless).")
@click.option("--temporal-weight", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="grid-video: weight of the temporal-consistency term; trades PSNR for less flicker (1.0: about "
                   "-15 % flicker and -0.6 dB at 1 bpp on cine clips).")
@click.option("--static-grids", type=click.IntRange(min=0, max=7), default=None,
              help="grid-video: static (one-frame) grids at the finest N scales, shared by every frame [default: 0; "
                   "none below 0.075 bpp].")
@click.option("--no-predictive", is_flag=True,
              help="auto: keep the INR file; do not also try the near-lossless mode's predictive coder.")
@click.option("--hash", "source_hash", is_flag=True, help="Store the SHA-256 of the source pixels (medinr verify).")
@click.option("--init", "init_file", type=click.Path(path_type=Path), default=None,
              help="Start from this init file (medinr meta-train) instead of the installed one; decode needs it too.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def encode(input_path: Path, output: Path, bpp: float | None, psnr: float | None, preset: str, modality: str,
           arch: str | None, slice_spec: str | None, luma: bool, keep_metadata: bool, steps: int | None,
           max_error: int | None, temporal_weight: float, static_grids: int | None, no_predictive: bool,
           source_hash: bool, init_file: Path | None, quiet: bool, as_json: bool) -> None:
    """Compress INPUT (DICOM, NIfTI, PNG/TIFF/JPEG, .npy, fastMRI .h5) to a .minr file."""
    from medinr.codec import ModalityChoice, detect_modality, encode_report, validate_targets
    from medinr.io import read
    from medinr.io.common import atomic_write

    if output.suffix.lower() != ".minr":
        raise MedinrError(f"output must end in .minr, got {output.name}")
    validate_targets(bpp, psnr, modality)
    image = read(input_path, slice=slice_spec, luma=luma)
    choice = detect_modality(image) if modality == "auto" else ModalityChoice(modality, "given")
    with _progress(quiet or as_json) as progress:
        result = encode_report(image, bpp=bpp, psnr=psnr, preset=preset, modality=choice.modality,
                               keep_metadata=keep_metadata, progress=progress, arch=arch, fit_steps=steps,
                               grid_steps=steps, video_steps=steps, max_error=max_error, source_hash=source_hash,
                               init_file=init_file,
                               grid_temporal_weight=temporal_weight, video_static_levels=static_grids,
                               predictive_mode=not no_predictive)
    atomic_write(output, ".minr", lambda tmp: tmp.write_bytes(result.data))
    summary = {"input": str(input_path), "output": str(output), "bytes": len(result.data), **result.metrics,
               "modality": choice.modality, "modality_source": choice.source,
               "modality_confidence": choice.confidence, "warnings": result.warnings}
    if image.metadata.get("luma_of"):
        summary["luma_of"] = image.metadata["luma_of"]
    if as_json:
        _print_json(summary)
    elif not quiet:
        m = result.metrics
        click.echo(f"{output}: {len(result.data)} bytes, {m['bpp']:.4f} bpp (ratio {m['compression_ratio']:.1f}:1), "
                   f"PSNR {m['psnr']:.2f} dB, MS-SSIM {m['ms_ssim']:.4f}, max error {m['max_abs_error']:g}, "
                   f"encode {result.encode_seconds:.1f} s, decode {result.decode_seconds * 1000:.0f} ms"
                   + (f" ({result.encode_seconds / image.frames:.2f} s and "
                      f"{result.decode_seconds * 1000 / image.frames:.0f} ms per frame)" if image.frames > 1 else "")
                   + f", modality {choice}")
    for note in result.warnings:
        click.echo(f"medinr: warning: {note}", err=True)
    if "luma_of" in summary and not (quiet or as_json):
        click.echo(f"medinr: coded the luma of a colour ({summary['luma_of']}) source; its colour is not in the file",
                   err=True)


@main.command()
@click.argument("input_path", metavar="IN.minr", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Output file: .dcm, .png, .tif, .npy, .nii or .nii.gz.")
@click.option("--init", "init_file", type=click.Path(path_type=Path), default=None,
              help="The init file IN.minr was encoded with (encode --init).")
@click.option("--quiet", is_flag=True)
def decode(input_path: Path, output: Path, init_file: Path | None, quiet: bool) -> None:
    """Decompress a .minr file to DICOM, PNG, TIFF, NumPy or NIfTI."""
    from medinr.codec import decode as decode_bytes
    from medinr.io import write
    from medinr.verify import derivation_for

    data = _read_bytes(input_path)
    start = time.perf_counter()
    image = decode_bytes(data, init_file)
    seconds = time.perf_counter() - start
    write(image, output, derivation=derivation_for(data))
    if not quiet:
        click.echo(f"{output}: {'x'.join(map(str, image.pixels.shape))} {image.pixels.dtype}, "
                   f"decoded in {seconds * 1000:.0f} ms")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MedinrError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MedinrError(f"{path}: is a directory") from None


@main.command()
@click.argument("input_path", metavar="IN.minr", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def info(input_path: Path, as_json: bool) -> None:
    """Show a .minr file's header, sizes and architecture."""
    from medinr.codec import describe

    details = describe(_read_bytes(input_path))
    if as_json:
        _print_json(details)
        return
    if "fps" in details:  # a sequence: say the rate and where it comes from
        rate = f"{details['fps']:.4g} fps"
        details["fps"] = rate + (" assumed (the file holds no frame times)" if details.pop("fps_assumed") else "")
        details["mbps"] = f"{details['mbps']:.4g} Mbps at {rate}"
    for key, value in details.items():
        click.echo(f"{key:>22}: {value}")


@main.command()
@click.argument("input_path", metavar="IN.minr", type=click.Path(path_type=Path))
@click.argument("original", metavar="ORIGINAL", type=click.Path(path_type=Path))
@click.option("--slice", "slice_spec", type=str, default=None, help="AXIS:INDEX of ORIGINAL, as given to encode.")
@click.option("--luma", is_flag=True, help="ORIGINAL is a colour DICOM encoded with --luma: compare with its luma.")
@click.option("--json", "as_json", is_flag=True)
def verify(input_path: Path, original: Path, slice_spec: str | None, luma: bool, as_json: bool) -> None:
    """Decode IN.minr and compare with ORIGINAL: max error, PSNR, error bound and source hash.

    Exits 1 when anything does not match (shape, bound, or hash).
    """
    from medinr.io import read
    from medinr.verify import verify as verify_file

    report = verify_file(_read_bytes(input_path), read(original, slice=slice_spec, luma=luma))
    if as_json:
        _print_json(report.as_dict())
    else:
        for key, value in report.as_dict().items():
            click.echo(f"{key:>22}: {value}")
    if not report.ok:
        _fail(f"{input_path} does not match {original}", 1)


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise MedinrError(f"expected comma-separated numbers, got {text!r}") from None


@main.command()
@click.argument("specs", nargs=-1, required=True, metavar="DATA...")
@click.option("--codecs", default="medinr,jpeg2000,jpegxl,jpeg", show_default=True,
              help="Comma-separated: medinr, medinr:ARCH[:PRESET] (e.g. medinr:grid:fast), jpeg, jpeg2000, htj2k, "
                   "jpegls, jpegxl, avif, spiht, coin, autoencoder, liif; for sequences x264, x265 (veryslow), "
                   "x264-medium, x265-medium, jpeg2000-frames, nerv, medinr:seed-video[:PRESET].")
@click.option("--bpps", default=None,
              help="medinr target bpps [default 0.25,0.5,1,2; quick 0.25,1]; 'auto': per image, where the anchor "
                   "gives 35, 40, 45 and 50 dB (the BD-rate target's window).")
@click.option("--preset", type=click.Choice(PRESETS), default=None, help="Preset of plain 'medinr' [default fast].")
@click.option("--arch", type=str, default=None, help="Architecture of plain 'medinr' (default: the preset's).")
@click.option("--fit-steps", type=int, default=None, help="Override medinr's fitting steps (seed and grid).")
@click.option("--coin-steps", type=int, default=None, help="COIN fitting steps [default 2000; quick 500].")
@click.option("--anchor", default="jpeg2000", show_default=True, help="BD-rate anchor codec.")
@click.option("--frames", type=click.Choice(["sample", "all", "stack", "sequence"]), default="sample",
              show_default=True,
              help="Volumes, multi-frame files, cine folders: 3 evenly spaced slices of the middle 60 %, every "
                   "slice, the whole stack as one image, or as one sequence (video; NIfTI volumes are still "
                   "sampled). With a video codec in --codecs, DICOM-series folders (cine-test), video files and "
                   "timed multi-frame DICOM files (echo loops) are sequences under every rule.")
@click.option("--seq-frames", type=int, default=None, help="Sequences: first N frames only [quick: 10].")
@click.option("--seq-crop", type=int, default=None, help="Sequences: centre crop N x N [default --crop; quick: 128].")
@click.option("--seq-bpps", default=None, help="Sequences: medinr target bpps [default --bpps; quick 0.05,0.2,1].")
@click.option("--video-anchors", default=None,
              help="Sequences: BD-rate anchors, those among the codecs [default x265-veryslow,jpeg2000-frames].")
@click.option("--nerv-steps", type=int, default=None, help="NeRV fitting steps [default 600; quick 300].")
@click.option("--slice", "slice_spec", default=None, help="AXIS:INDEX: this one slice of every volume instead.")
@click.option("--resize", type=int, default=None, help="Downscale so the longer side is N px (before --crop).")
@click.option("--crop", type=int, default=None, help="Centre-crop every image to N x N [quick: 256].")
@click.option("--rate-points", type=int, default=None,
              help="Rate points per baseline codec [default: all, also with --quick: BD-rate needs the anchor dense].")
@click.option("--quick", is_flag=True, help="Few rate points, 256 px crops: public test sets in < 15 min, --jobs 2.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Worker processes (1 torch thread each).")
@click.option("--threads", type=int, default=None, help="Torch threads of medinr encodes with --jobs 1 [preset's].")
@click.option("--resume", is_flag=True, help="Keep finished entries of an existing --out file; run the rest.")
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("results.json"), show_default=True)
@click.option("--ablation", is_flag=True,
              help="Instead of codecs: the seed init/loss ablation (random, shipped Reptile, --ablation-inits, "
                   "sparsity and edge losses) [crop 128, bpps 0.5,1,2, fit steps 200].")
@click.option("--ablation-inits", default=None,
              help="With --ablation: more init arms, NAME=FILE,... (meta-train output; one file per modality, "
                   "e.g. maml=maml-cxr.pt,maml=maml-mri.pt).")
@click.option("--ablation-images", type=int, default=3, show_default=True,
              help="With --ablation: images per data set (evenly spread).")
@click.option("--quiet", is_flag=True)
def bench(specs: tuple[str, ...], codecs: str, bpps: str | None, preset: str | None, arch: str | None,
          fit_steps: int | None, coin_steps: int | None, anchor: str, frames: str, seq_frames: int | None,
          seq_crop: int | None, seq_bpps: str | None, video_anchors: str | None, nerv_steps: int | None,
          slice_spec: str | None, resize: int | None, crop: int | None, rate_points: int | None, quick: bool, jobs: int,
          threads: int | None, resume: bool, out: Path, ablation: bool, ablation_inits: str | None,
          ablation_images: int, quiet: bool) -> None:
    """Compare codecs on DATA: named sets (cxr-test, mri-test, cine-test, cxr-train, ...), folders, globs, files.

    Writes results JSON (CompressAI-style results per codec and data set, per-image records, BD-rate and
    BD-PSNR against the anchor; sequences also in Mbps, per-frame quality, flicker, against x265 veryslow
    and per-frame JPEG 2000); `medinr report` turns it into an HTML page.
    """
    from medinr.bench.runner import AUTO_WINDOW_PSNRS, make_config, run_bench

    def names(text: str) -> list[str]:
        return [c.strip() for c in text.split(",") if c.strip()]

    if ablation:
        _ablation(list(specs), names(ablation_inits or ""), ablation_images, bpps, fit_steps, crop, out, quiet)
        return

    auto = bpps is not None and bpps.strip().lower() == "auto"
    cfg = make_config(quick, codecs=names(codecs), medinr_bpps=_floats(bpps) if bpps and not auto else None,
                      medinr_window=AUTO_WINDOW_PSNRS if auto else None, preset=preset,
                      arch=arch, fit_steps=fit_steps, coin_steps=coin_steps, anchor=anchor, frames=frames,
                      sequence_frames=seq_frames, sequence_crop=seq_crop,
                      sequence_bpps=_floats(seq_bpps) if seq_bpps else None,
                      video_anchors=names(video_anchors) if video_anchors else None,
                      nerv_steps=nerv_steps, slice=slice_spec, resize=resize, crop=crop, rate_points=rate_points,
                      jobs=jobs, threads=threads)
    with _bench_progress(quiet) as progress:
        document = run_bench(list(specs), cfg, progress, out=out, resume=resume)
    if not quiet:
        _print_bench_table(document)
        click.echo(f"results written to {out}")


def _ablation(specs: list[str], inits: list[str], per_set: int, bpps: str | None, fit_steps: int | None,
              crop: int | None, out: Path, quiet: bool) -> None:
    """``medinr bench --ablation``: run, write the JSON atomically, print the README table."""
    from medinr.bench.ablation import markdown, run_ablation
    from medinr.bench.runner import write_results

    arms: dict[str, list[Path]] = {}
    for spec in inits:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--ablation-inits wants NAME=FILE, got {spec!r}")
        arms.setdefault(name, []).append(Path(path))
    kwargs = {k: v for k, v in {"bpps": tuple(_floats(bpps)) if bpps else None, "fit_steps": fit_steps,
                                "crop": crop}.items() if v is not None}
    with _bench_progress(quiet) as progress:
        report = (lambda d, t: progress(f"{d}/{t} images", d, t)) if progress else None
        document = run_ablation(specs, inits=arms, per_set=per_set, progress=report, **kwargs)
    write_results(document, out)
    if not quiet:
        click.echo(markdown(document))
        click.echo(f"ablation written to {out}")


@main.command()
@click.argument("results", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("report"), show_default=True,
              help="Folder for index.html and its PNG figures.")
@click.option("--no-visuals", is_flag=True, help="Skip the visual comparisons (they re-read the source images).")
def report(results: Path, output: Path, no_visuals: bool) -> None:
    """Write an HTML report (RD curves, bar charts, BD-rate tables, visual comparisons) of a bench results file."""
    from medinr.bench.report import write_report

    page = write_report(results, output, visuals=not no_visuals)
    click.echo(f"report written to {page}")


@contextmanager
def _bench_progress(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """One progress bar for a benchmark: images and codec runs done, the last finished, elapsed time."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(BarColumn(), MofNCompleteColumn(), TextColumn("codec runs"), TimeElapsedColumn(),
                   TextColumn("{task.description}"))
    task = bar.add_task("starting", total=None)

    def update(description: str, done: int, total: int) -> None:
        bar.start()  # on the first update, so errors found before any work print without a bar
        bar.update(task, description=description, completed=done, total=total)

    try:
        yield update
    finally:
        bar.stop()


@main.command("meta-train")
@click.argument("data", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--modality", type=click.Choice(["cxr", "mri", "cine"]), required=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Init file to write (.pt).")
@click.option("--algorithm", type=click.Choice(["maml", "fomaml", "reptile", "metasgd"]), default="fomaml",
              show_default=True)
@click.option("--steps", type=int, default=300, show_default=True, help="Outer (meta) steps.")
@click.option("--inner-steps", type=int, default=3, show_default=True)
@click.option("--inner-lr", type=float, default=None, help="Inner step size (default per algorithm).")
@click.option("--outer-lr", type=float, default=None, help="Outer step size (default per algorithm).")
@click.option("--tasks-per-batch", type=int, default=4, show_default=True)
@click.option("--task-size", type=int, default=256, show_default=True, help="Task side in pixels.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint beside the output.")
@click.option("--quiet", is_flag=True)
def meta_train_command(data: tuple[Path, ...], modality: str, output: Path, algorithm: str, steps: int,
                       inner_steps: int, inner_lr: float | None, outer_lr: float | None, tasks_per_batch: int,
                       task_size: int, resume: bool, quiet: bool) -> None:
    """Meta-learn a seed initialisation for a modality from training images/folders DATA.

    The shipped inits are rebuilt exactly with `python -m medinr.meta.ship {cxr,mri} --data ../shared/data`.
    """
    from medinr.meta.train import meta_train

    with _progress(quiet) as progress:
        result = meta_train(modality, list(data), output, algorithm=algorithm, steps=steps, inner_steps=inner_steps,
                            inner_lr=inner_lr, outer_lr=outer_lr, tasks_per_batch=tasks_per_batch,
                            task_size=task_size, resume=resume,
                            progress=(lambda step, total, stats: progress("meta-train", step, total))
                            if progress else None)
    click.echo(result.describe())


@main.command()
@click.option("--preset", type=click.Choice(PRESETS), default="fast", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def demo(preset: str, as_json: bool) -> None:
    """Encode + decode the shipped sample images; print medinr and JPEG 2000 side by side."""
    from rich.console import Console
    from rich.table import Table

    from medinr.demo import run_demo

    with _progress(as_json) as progress:
        rows = run_demo(preset, progress)
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"medinr demo (preset {preset}) vs JPEG 2000 at the same bpp")
    for col in ("image", "codec", "bpp", "PSNR dB", "MS-SSIM", "max err", "encode s", "decode ms"):
        table.add_column(col)
    for row in rows:
        name = f"{row['file']} ({'x'.join(map(str, row['shape']))}, {row['bits']}-bit)"
        m, j = row["medinr"], row["jpeg2000"]
        table.add_row(name, "medinr", f"{m['bpp']:.3f}", f"{m['psnr']:.2f}", f"{m['ms_ssim']:.4f}",
                      f"{m['max_abs_error']:g}", f"{m['encode_seconds']:.1f}", f"{1000 * m['decode_seconds']:.0f}")
        table.add_row("", "JPEG 2000", f"{j['bpp']:.3f}", f"{j['psnr']:.2f}", f"{j['ms_ssim']:.4f}",
                      f"{j['max_abs_error']:g}", f"{j['encode_seconds']:.2f}", "")
    Console().print(table)
    click.echo("PSNR peak = the image's own max - min. Sample attribution: medinr/data/samples/ATTRIBUTION.md")


def _num(value: Any, spec: str) -> str:
    """A table cell: the number formatted, or the results file's text for a mean it could not take ("n/a")."""
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def _print_bench_table(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from medinr.bench.bdrate import WINDOW_LABEL

    console = Console()
    for dataset, entry in document["datasets"].items():
        # sequences add video units: Mbps at the frame rate, temporal flicker, time per frame
        video = any("mbps" in c["results"] for c in entry["codecs"])
        table = Table(title=f"{dataset}: mean over {len(entry['images'])} "
                            f"{'sequence' if video else 'image'}(s), per rate point")
        columns = ("codec", "bpp", "Mbps", "PSNR dB", "MS-SSIM", "flicker", "enc s/frame", "dec ms/frame") if video \
            else ("codec", "bpp", "PSNR dB", "MS-SSIM", "enc s", "dec ms")
        for col in columns:
            table.add_column(col, no_wrap=col == "codec")
        for codec in entry["codecs"]:
            r = codec["results"]
            if not r["bpp"]:
                table.add_row(codec["name"], f"({codec['unsupported']} unsupported, {codec['errors']} errors)")
            for i in range(len(r["bpp"])):
                if video and "mbps" in r:
                    table.add_row(codec["name"], _num(r["bpp"][i], ".3f"), _num(r["mbps"][i], ".3f"),
                                  _num(r["psnr"][i], ".2f"), _num(r["ms-ssim"][i], ".4f"),
                                  _num(r["temporal_flicker"][i], ".2f"), _num(r["encoding_time_per_frame"][i], ".2f"),
                                  _num(r["decoding_ms_per_frame"][i], ".1f"))
                else:
                    ms = r["decoding_time"][i]
                    table.add_row(codec["name"], _num(r["bpp"][i], ".3f"), *([""] if video else []),
                                  _num(r["psnr"][i], ".2f"), _num(r["ms-ssim"][i], ".4f"), *([""] if video else []),
                                  _num(r["encoding_time"][i], ".2f"),
                                  _num(1000 * ms if isinstance(ms, (int, float)) else ms, ".1f"))
        console.print(table)
        bd = entry["bd_vs_anchor"]
        for name, s in bd["per_codec"].items():
            stats = s["bd_rate_percent"]
            value = "n/a" if stats["mean"] is None else f"{stats['mean']:+.1f} % (median {stats['median']:+.1f} %)"
            window = s.get("bd_rate_window_percent") or {"mean": None, "count": 0}
            inside = "n/a" if window["mean"] is None else f"{window['mean']:+.1f} %"
            click.echo(f"{dataset}: BD-rate of {name} vs {bd['anchor']}: {value} "
                       f"({s['images_with_bd_rate']}/{s['images']} images); inside {WINDOW_LABEL}: {inside} "
                       f"({window['count']} images)")


if __name__ == "__main__":
    main()
