"""``comfy.ldm.flux.math``: Flux's attention and rotary-embedding helpers, not in Weft (see the
package); each function raises :class:`_weft_absent.NotInWeftError` when called."""

from __future__ import annotations

from _weft_absent import OTHER_FAMILIES, absent_function

attention = absent_function(OTHER_FAMILIES, __name__, "attention")
rope = absent_function(OTHER_FAMILIES, __name__, "rope")
apply_rope1 = absent_function(OTHER_FAMILIES, __name__, "apply_rope1")
apply_rope = absent_function(OTHER_FAMILIES, __name__, "apply_rope")
