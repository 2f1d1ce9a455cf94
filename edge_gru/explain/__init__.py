"""Where the drift comes from: per-layer, per-step and per-gate localisation of a stage's drift.

* :mod:`.traces`: the tracer registry (stage name -> tracers) and the trace types;
* ``tracers_fixed`` / ``tracers_tflite`` / ``tracers_onnx``: the tracers of the built-in stages;
* :mod:`.localise`: the metrics (relative L2 error, cosine, injected error, gate shares);
* :mod:`.ablation`: which weight tensor's quantization (float reference, one tensor at a time);
* :mod:`.run`: sampling and one section document per run;
* :mod:`.section`: the report section (Markdown and plot);
* :mod:`.folder`: ``--explain STAGE`` on an existing output folder.
"""
