"""The Gradio page of `vqcnir serve`: it only adapts inputs and outputs to ``PhotoRestorer``.

Offline and private by construction: no analytics, no share link, no fonts or scripts from the
internet (system fonts only), no run history, no MCP server, and Gradio serves only files of its
own upload folder (which `vqcnir serve` puts in a temporary folder it removes at exit).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..errors import VQCNIRError
from .service import PhotoRestorer

API_NAME = "restore"  # the endpoint gradio_client calls: client.predict(..., api_name="/restore")
_CONCURRENCY_ID = "restore"  # the button and the examples share one queue: one photo at a time

INTRO = """# vqcnir: restore a night photo
Drop, paste or pick a dark, blurry photo, then **Restore**. Everything runs on this computer;
nothing is uploaded anywhere else. The download has the input's format and bit depth
(a 16-bit PNG gives a 16-bit PNG)."""


def private_theme() -> gr.themes.Base:
    """The default look with the system's own fonts, so the page never asks a font server."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "Consolas", "monospace"])


def build_app(service: PhotoRestorer, examples: list[Path] = ()) -> gr.Blocks:
    # The events run with preprocess=False: the photo arrives as Gradio's file record of the
    # untouched upload (Gradio has already checked that it lies in its upload folder), and
    # vqcnir's reader keeps 16 bits and EXIF and words a bad file's message, where Gradio's
    # Pillow step would reduce it to 8 bits or fail with an opaque error.
    def restore(photo, model, self_ensemble, precision, progress=gr.Progress()):
        if not photo or not photo.get("path"):
            raise gr.Error("choose a photo first (drop it, paste it or click the box)", print_exception=False)
        progress((0, None), desc="restoring", unit="pass")
        try:
            result = service.restore(photo["path"], model, self_ensemble, precision,
                                     progress=lambda done, total: progress((done, total), desc="restoring", unit="pass"))
        except VQCNIRError as error:
            raise gr.Error(str(error), title="Cannot restore this photo", print_exception=False) from None
        return (result.night_preview, result.restored_preview), str(result.output), result.summary

    with gr.Blocks(title="vqcnir: restore night photos", analytics_enabled=False,
                   delete_cache=(600, 3600)) as app:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(label="Night photo", type="filepath", sources=["upload", "clipboard"], format="png",
                                 image_mode=None, elem_id="photo", height=360)
                model = gr.Dropdown(service.model_names, value=service.model_names[0], label="Model",
                                    elem_id="model")
                with gr.Row():
                    ensemble = gr.Checkbox(label="Self-ensemble (better, 8x slower)", value=False, elem_id="ensemble")
                    precision = gr.Radio(service.precisions(), value="fp32", label="Precision", elem_id="precision")
                button = gr.Button("Restore", variant="primary", elem_id="restore")
            with gr.Column(scale=1):
                slider = gr.ImageSlider(label="Before / after", format="png", type="numpy", interactive=False,
                                        elem_id="comparison", max_height=480)
                download = gr.File(label="Full-resolution result", interactive=False, elem_id="download")
                summary = gr.Markdown(elem_id="summary")
        inputs, outputs = [photo, model, ensemble, precision], [slider, download, summary]
        button.click(restore, inputs, outputs, api_name=API_NAME, preprocess=False, concurrency_limit=1,
                     concurrency_id=_CONCURRENCY_ID)
        if examples:
            gallery = gr.Examples([[str(p)] for p in examples], inputs=[photo], label="Bundled samples (one click)")
            gallery.load_input_event.then(restore, inputs, outputs, api_visibility="undocumented", preprocess=False,
                                          concurrency_limit=1, concurrency_id=_CONCURRENCY_ID)
    return app


def accepted_upload_bytes(max_megapixels: float) -> int:
    """The largest upload worth reading: an uncompressed 16-bit RGBA photo of the largest size."""
    return int(max_megapixels * 1e6 * 8) + 2**20


def launch(app: gr.Blocks, host: str, port: int, max_megapixels: float) -> None:
    """Serve until interrupted, with every outward-facing Gradio feature turned off."""
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=port, share=False, inbrowser=False, show_error=False,
               theme=private_theme(), footer_links=["api"], run_history=False, mcp_server=False,
               enable_monitoring=False, ssr_mode=False, pwa=False, max_file_size=accepted_upload_bytes(max_megapixels),
               allowed_paths=[], blocked_paths=[], quiet=True)
