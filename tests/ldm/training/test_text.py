import torch

from ldm.text.tokenizer import EOS_ID
from ldm.training.config import TINY
from ldm.training.text import caption_ids, checkpoint_weights, clip_handle, encode_ids, new_text_encoder


def test_caption_ids_are_the_inference_tokens():
    text = new_text_encoder(TINY.text, seed=0)
    handle = clip_handle(text)
    for caption in ("a red circle at the top left on a blue background", "", "(weird) text, 123"):
        ids = caption_ids([caption], TINY.text.width)[0]
        expected = [token for token, _weight in handle.tokenize(caption, disable_weights=True)["l"][0]]
        assert ids.tolist() == expected
    long = caption_ids(["word " * 200], TINY.text.width)
    assert long.shape == (1, 77) and long[0, -1] == EOS_ID


def test_training_encoder_output_is_what_clip_text_encode_gives():
    text = new_text_encoder(TINY.text, seed=0).eval()
    caption = "a yellow triangle in the center on a black background"
    with torch.no_grad():
        trained_view = encode_ids(text, caption_ids([caption], TINY.text.width))
    assert torch.equal(trained_view, clip_handle(text).encode(caption))


def test_new_encoder_is_seeded_and_keyed_as_sd1():
    a, b = new_text_encoder(TINY.text, seed=4), new_text_encoder(TINY.text, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    keys = checkpoint_weights(a)
    token_embedding = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
    assert keys[token_embedding].shape == (49408, 32)
