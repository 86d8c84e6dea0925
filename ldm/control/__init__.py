"""ControlNets, T2I-Adapters and control-LoRAs (``CONTROL_NET``), and weightless control images.

``network`` (the ControlNet, original key names), ``t2i_adapter`` (TencentARC's adapters),
``detect`` (shapes from weights), ``keys`` (diffusers names to the original ones), ``loading``
(which kind a file is, the built network), ``apply`` (what the apply nodes attach to
conditioning and what sampling runs per model call), ``preprocess`` (Canny and other control
images from pixels), ``tiny`` (tiny random files in the real layouts, for tests).
"""
