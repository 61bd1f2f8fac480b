"""Masked-language-model fillers: the words a model puts in place of ``[MASK]`` (the seed notebook's
fill-mask cell). No masked-language weights ship offline, so a model folder or hub id must be named."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ModelNotFound
from .runner import ModelRunner

MASK = "[MASK]"


@dataclass
class Filler:
    token: str
    score: float  # the model's probability for this token at the mask
    text: str  # the input with the mask filled

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class MaskFiller(ModelRunner):
    """``MaskFiller(model).fill("Paris is the [MASK] of France.")``: the best fillers, most likely first."""

    auto_class = "AutoModelForMaskedLM"
    what = "masked-language model"

    def __init__(self, model: str | None = None, precision: str = "auto"):
        if not model:
            raise ModelNotFound("No masked-language model ships with search, and none is available offline:"
                                " name a model folder with --model (or a hub id such as bert-base-uncased while online).")
        super().__init__(model, precision)

    def fill(self, text: str, top_k: int = 5) -> list[Filler]:
        import torch

        mask = self.tokenizer.mask_token
        if mask is None:
            raise ModelNotFound(f"{self.model_name} has no mask token: it is not a masked-language model.")
        text = text.replace(MASK, mask) if mask != MASK else text
        batch = self.tokenizer(text, return_tensors="pt", truncation=True)
        where = (batch["input_ids"][0] == self.tokenizer.mask_token_id).nonzero().flatten()
        if len(where) != 1:
            raise ValueError(f"Put exactly one {MASK} in the text (found {len(where)}).")
        with torch.inference_mode():
            logits = self.model(**batch).logits[0, int(where[0])].float()
        probabilities = torch.softmax(logits, -1)
        best = torch.topk(probabilities, min(top_k, len(probabilities)))
        out = []
        for score, token_id in zip(best.values.tolist(), best.indices.tolist()):
            token = self.tokenizer.decode([token_id]).strip()
            out.append(Filler(token, score, text.replace(mask, token, 1)))
        return out
