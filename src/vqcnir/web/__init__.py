"""`vqcnir serve`: a local web page that restores photos with the same engine as `vqcnir restore`.

``service`` holds the models and does the work (no web framework); ``app`` lays out the Gradio
page over it; ``cli`` adds the command. Gradio is optional (``pip install "vqcnir[web]"``) and
only ``app`` imports it, so the rest of the package never pays for it.
"""

# Photos above this many megapixels are refused (`vqcnir serve --max-megapixels`): 40 MP takes
# minutes on a CPU, and the upload limit is derived from it.
DEFAULT_MAX_MEGAPIXELS = 40.0
