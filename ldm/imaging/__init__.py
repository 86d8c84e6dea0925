"""Image, mask and pixel algorithms on IMAGE ``[B, H, W, C]`` and MASK ``[B, H, W]`` tensors.

``operations`` (resampling, blur, sharpen, blend, composite, masks, batches), ``editing`` (stitch,
fit and pad, tiles, grids, crop to a mask, Porter-Duff), ``morphology``, ``bounding_boxes`` and
``box_elements``, ``compositing`` and ``layer_stack`` (layer blend modes and LAYERS documents),
colour (``color``, ``color_spaces``, ``color_transfer``, ``curves``, ``sdr_to_hdr``),
``text_overlay``, ``glsl`` (fragment shaders), files (``image_io``, ``animation_io``, ``av_stills``
for PNG and EXR, ``avif``) and ``upscale`` (spandrel upscale models run in tiles). Importers name
the module they use.
"""
