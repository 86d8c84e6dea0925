import json

import pytest

from graph.protocol import NodeDefinitionError
from graph.registry import NodeRegistry
from graph.types import types_compatible


def test_object_info_shape(registry):
    info = registry.object_info()
    json.dumps(info)  # must be JSON-serialisable
    entry = info["StringConcatenate"]
    assert set(entry) == {"input", "input_order", "output", "output_is_list", "output_name", "name",
                          "display_name", "description", "python_module", "category", "output_node"}
    assert entry["input"]["required"]["delimiter"] == ("STRING", {"multiline": False, "default": ""})
    assert entry["input_order"] == {"required": ["string_a", "string_b", "delimiter"]}
    assert entry["output"] == ["STRING"] and entry["output_is_list"] == [False] and entry["output_name"] == ["STRING"]
    assert entry["display_name"] == "Concatenate Text" and entry["category"] == "text"
    assert entry["python_module"] == "nodes" and entry["output_node"] is False
    assert info["PreviewAny"]["output_node"] is True
    assert info["StringLength"]["output_name"] == ["length"]
    assert info["Explode"]["output_is_list"] == [True]
    assert info["Repeat"]["input"]["hidden"] == {"unique_id": "UNIQUE_ID"}
    assert info["Number"]["python_module"] == "custom_nodes.testpack"


def test_core_nodes_cannot_be_replaced(registry):
    class Fake:
        RETURN_TYPES = ()
        FUNCTION = "f"

        @classmethod
        def INPUT_TYPES(cls):
            return {}

        def f(self):
            return ()

    with pytest.raises(NodeDefinitionError, match="core node"):
        registry.register("StringConcatenate", Fake)
    assert registry.register_mappings({"PrimitiveInt": Fake}) == {
        "PrimitiveInt": "PrimitiveInt is a core node and cannot be replaced"}


@pytest.mark.parametrize("attrs, message", [
    ({"RETURN_TYPES": "INT"}, "RETURN_TYPES"),
    ({"FUNCTION": "missing"}, "FUNCTION"),
    ({"RETURN_NAMES": ("a", "b")}, "RETURN_NAMES"),
    ({"OUTPUT_IS_LIST": (True, False)}, "OUTPUT_IS_LIST"),
    ({"INPUT_TYPES": classmethod(lambda cls: {"required": {"x": ("INT",)}, "bogus": {}})}, "unknown sections"),
    ({"INPUT_TYPES": classmethod(lambda cls: {"required": {"not_taken": ("INT",)}})}, "does not accept"),
])
def test_malformed_nodes_are_rejected_at_registration(attrs, message):
    def run(self, x=0):
        return (x,)

    body = {"RETURN_TYPES": ("INT",), "FUNCTION": "run", "run": run,
            "INPUT_TYPES": classmethod(lambda cls: {"required": {"x": ("INT",)}})}
    body.update(attrs)
    with pytest.raises(NodeDefinitionError, match=message):
        NodeRegistry().register("Broken", type("Broken", (), body))


@pytest.mark.parametrize("out, inp, ok", [
    ("IMAGE", "IMAGE", True), ("IMAGE", "MASK", False), ("INT", "FLOAT,INT", True), ("FLOAT,INT", "INT", True),
    ("STRING", "FLOAT,INT", False), ("*", "IMAGE", True), ("IMAGE", "*", True), (["a", "b"], ["a", "b"], True),
    ("COMBO", ["a"], True), ("STRING", ["a"], False), ("*", ["a"], True), (["a"], "STRING", False),
])
def test_types_compatible(out, inp, ok):
    assert types_compatible(out, inp) is ok


def test_any_type_str_subclass_trick():
    class AnyType(str):
        def __ne__(self, other):
            return False

    assert types_compatible("LATENT", AnyType("*"))


def test_a_required_parameter_no_input_declares_is_refused_at_registration():
    class Undeclared:
        RETURN_TYPES = ("INT",)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"a": ("INT", {})}}

        def run(self, a, b):
            return (a + b,)

    class WithDefault(Undeclared):
        def run(s, a, b=1):  # noqa: N805  (packs name the receiver anything)
            return (a + b,)

    registry = NodeRegistry()
    with pytest.raises(NodeDefinitionError, match=r"requires parameters no input declares \['b'\]"):
        registry.register("Undeclared", Undeclared)
    assert registry.register("WithDefault", WithDefault).function == "run"


def test_inputs_the_executor_never_passes_need_not_be_taken():
    """Editor-only optional inputs and hidden values of no executor kind (packs declare both for
    their scripts) are not passed unless present, as in ComfyUI; required ones must be taken."""

    class EditorOnly:
        RETURN_TYPES = ("INT",)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"a": ("INT", {})}, "optional": {"autosize": ("ADEAUTOSIZE", {})},
                    "hidden": {"version": "1.2", "unique_id": "UNIQUE_ID"}}

        def run(self, a, unique_id=None):
            return (a,)

    class DropsRequired(EditorOnly):
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"a": ("INT", {}), "b": ("INT", {})}}

    class DropsHiddenKind(EditorOnly):
        def run(self, a):
            return (a,)

    registry = NodeRegistry()
    assert registry.register("EditorOnly", EditorOnly).function == "run"
    with pytest.raises(NodeDefinitionError, match=r"does not accept declared inputs \['b'\]"):
        registry.register("DropsRequired", DropsRequired)
    with pytest.raises(NodeDefinitionError, match=r"\['unique_id'\]"):
        registry.register("DropsHiddenKind", DropsHiddenKind)


def test_a_subclass_that_redeclares_its_outputs_does_not_inherit_the_base_names():
    # Impact-Pack's LatentSender(SaveLatent) declares RETURN_TYPES = () under a base whose one
    # output is named: the inherited names belong to the base's outputs (ComfyUI never checks them).
    class Base:
        RETURN_TYPES = ("LATENT",)
        RETURN_NAMES = ("samples",)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

        def run(self):
            return ()

    class Sender(Base):
        RETURN_TYPES = ()

    registry = NodeRegistry()
    registry.register("Base", Base)
    registry.register("Sender", Sender)
    assert registry.node_info("Sender")["output_name"] == [] and registry.node_info("Base")["output_name"] == ["samples"]
    # Names and types declared together must still agree.
    with pytest.raises(NodeDefinitionError, match="RETURN_NAMES"):
        registry.register("Broken", type("Broken", (Base,), {"RETURN_TYPES": ("INT", "INT"), "RETURN_NAMES": ("a",)}))
