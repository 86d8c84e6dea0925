from graph.validation import validate_prompt


def node(class_type, **inputs):
    return {"class_type": class_type, "inputs": inputs}


def only_error(result, node_id):
    errors = result.node_errors[node_id]["errors"]
    assert len(errors) == 1, errors
    error = errors[0]
    assert set(error) == {"type", "message", "details", "extra_info"}
    return error


def test_valid_prompt_passes_and_coerces_literals(registry):
    prompt = {"1": node("Number", value="7"), "2": node("Sink", value=["1", 0])}
    result = validate_prompt(prompt, registry)
    assert result.ok and result.outputs == ["2"] and result.node_errors == {}
    assert result.prompt["1"]["inputs"]["value"] == 7


def test_prompt_not_an_object_is_invalid_prompt(registry):
    result = validate_prompt(["not", "a", "dict"], registry)
    assert not result.ok and result.error["type"] == "invalid_prompt"


def test_node_without_class_type_is_invalid_prompt(registry):
    result = validate_prompt({"1": {"inputs": {}}}, registry)
    assert result.error["type"] == "invalid_prompt"
    assert "#1" in result.error["details"]


def test_unknown_node_type_names_it(registry):
    result = validate_prompt({"1": node("NoSuchNode")}, registry)
    assert result.error["type"] == "missing_node_type"
    assert "NoSuchNode" in result.error["message"]


def test_no_outputs(registry):
    result = validate_prompt({"1": node("Number", value=1)}, registry)
    assert result.error["type"] == "prompt_no_outputs"


def test_required_input_missing(registry):
    result = validate_prompt({"1": node("Sink")}, registry)
    assert result.error["type"] == "prompt_outputs_failed_validation"
    error = only_error(result, "1")
    assert error["type"] == "required_input_missing"
    assert error["extra_info"]["input_name"] == "value"
    assert result.node_errors["1"]["dependent_outputs"] == ["1"]
    assert result.node_errors["1"]["class_type"] == "Sink"


def test_bad_linked_input_shapes(registry):
    for bad in (["1"], ["1", 0, 2], [None, 0], ["1", "0"]):
        result = validate_prompt({"1": node("Number", value=1), "2": node("Sink", value=bad)}, registry)
        assert only_error(result, "2")["type"] == "bad_linked_input", bad


def test_dangling_link_and_missing_slot(registry):
    result = validate_prompt({"2": node("Sink", value=["99", 0])}, registry)
    assert only_error(result, "2")["type"] == "bad_linked_input"
    result = validate_prompt({"1": node("Number", value=1), "2": node("Sink", value=["1", 3])}, registry)
    error = only_error(result, "2")
    assert error["type"] == "bad_linked_input" and "no output 3" in error["message"]


def test_return_type_mismatch(registry):
    prompt = {"1": node("Image"), "2": node("Add", a=["1", 0], b=1), "3": node("Sink", value=["2", 0])}
    result = validate_prompt(prompt, registry)
    error = only_error(result, "2")
    assert error["type"] == "return_type_mismatch"
    assert "IMAGE" in error["details"] and "INT" in error["details"]
    assert result.node_errors["2"]["dependent_outputs"] == ["3"]


def test_invalid_input_type(registry):
    result = validate_prompt({"1": node("Number", value="seven"), "2": node("Sink", value=["1", 0])}, registry)
    error = only_error(result, "1")
    assert error["type"] == "invalid_input_type"
    assert error["extra_info"]["received_value"] == "seven"
    assert result.node_errors["1"]["dependent_outputs"] == ["2"]


def test_non_finite_float_is_invalid(registry):
    prompt = {"1": node("Pick", choice="red", ratio=float("nan")), "2": node("Sink", value=["1", 0])}
    assert only_error(validate_prompt(prompt, registry), "1")["type"] == "invalid_input_type"


def test_min_and_max(registry):
    low = validate_prompt({"1": node("Number", value=-101), "2": node("Sink", value=["1", 0])}, registry)
    assert only_error(low, "1")["type"] == "value_smaller_than_min"
    high = validate_prompt({"1": node("Number", value=101), "2": node("Sink", value=["1", 0])}, registry)
    assert only_error(high, "1")["type"] == "value_bigger_than_max"


def test_value_not_in_list(registry):
    result = validate_prompt({"1": node("Pick", choice="purple", ratio=0.1), "2": node("Sink", value=["1", 0])},
                             registry)
    error = only_error(result, "1")
    assert error["type"] == "value_not_in_list" and "purple" in error["details"]


def test_custom_validation_failed_and_exception(registry):
    result = validate_prompt({"1": node("EvenOnly", value=3), "2": node("Sink", value=["1", 0])}, registry)
    error = only_error(result, "1")
    assert error["type"] == "custom_validation_failed" and "3 is odd" in error["details"]
    ok = validate_prompt({"1": node("EvenOnly", value=4), "2": node("Sink", value=["1", 0])}, registry)
    assert ok.ok
    broken = validate_prompt({"1": node("BrokenValidator", value=4), "2": node("Sink", value=["1", 0])}, registry)
    error = only_error(broken, "1")
    assert error["type"] == "exception_during_validation" and "exploded" in error["details"]


def test_failed_output_is_dropped_others_survive(registry):
    prompt = {"1": node("Number", value=1), "2": node("Sink", value=["1", 0]),
              "3": node("Number", value=500), "4": node("Sink", value=["3", 0])}
    result = validate_prompt(prompt, registry)
    assert result.ok and result.outputs == ["2"]
    assert result.node_errors["3"]["dependent_outputs"] == ["4"]


def test_partial_execution_targets(registry):
    prompt = {"1": node("Number", value=1), "2": node("Sink", value=["1", 0]), "3": node("Sink", value=["1", 0])}
    result = validate_prompt(prompt, registry, partial_targets=["3"])
    assert result.ok and result.outputs == ["3"]
    missing = validate_prompt(prompt, registry, partial_targets=["9"])
    assert missing.error["type"] == "invalid_prompt"


def test_cycle_is_an_error_not_a_hang(registry):
    prompt = {"1": node("Add", a=["2", 0], b=1), "2": node("Add", a=["1", 0], b=1), "3": node("Sink", value=["2", 0])}
    result = validate_prompt(prompt, registry)
    assert not result.ok
    cycle_nodes = {nid for nid, e in result.node_errors.items() if e["errors"][0]["type"] == "dependency_cycle"}
    assert cycle_nodes == {"1", "2"}


def test_self_loop(registry):
    result = validate_prompt({"1": node("Add", a=["1", 0], b=1), "2": node("Sink", value=["1", 0])}, registry)
    assert not result.ok and result.node_errors["1"]["errors"][0]["type"] == "dependency_cycle"


def test_ten_thousand_node_chain_validates_quickly(registry):
    n = 10_000
    prompt = {"0": node("Number", value=1)}
    for i in range(1, n):
        prompt[str(i)] = node("Add", a=[str(i - 1), 0], b=1)
    prompt["out"] = node("Sink", value=[str(n - 1), 0])
    result = validate_prompt(prompt, registry)  # the suite's timeout catches a hang
    assert result.ok


def test_ten_thousand_node_cycle(registry):
    n = 10_000
    prompt = {str(i): node("Add", a=[str((i + 1) % n), 0], b=1) for i in range(n)}
    prompt["out"] = node("Sink", value=["0", 0])
    result = validate_prompt(prompt, registry)
    assert not result.ok
    assert sum(1 for e in result.node_errors.values() if e["errors"][0]["type"] == "dependency_cycle") == n
