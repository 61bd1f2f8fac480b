"""How a model sees a text: its word pieces, their ids and character offsets (the seed notebook's
tokenizer cells, for any model the project can load)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .finetuned import tokenizer_folder
from .models import DEFAULT_MODEL, resolve_model


@dataclass
class Token:
    piece: str
    id: int
    start: int | None  # character offsets in the text; None for special tokens ([CLS], [SEP])
    end: int | None
    special: bool = False


@dataclass
class Tokenized:
    model: str
    tokens: list[Token]
    decoded: str  # the ids turned back into text

    def to_dict(self) -> dict:
        return asdict(self)


def load_tokenizer(model: str = DEFAULT_MODEL):
    """The tokenizer of a bundled alias, model folder (a fine-tuned one's base) or hub id (online)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_folder(resolve_model(model)))


def tokenize(text: str, model: str = DEFAULT_MODEL, special_tokens: bool = True) -> Tokenized:
    """``text`` as ``model``'s tokenizer splits it."""
    tokenizer = load_tokenizer(model)
    encoded = tokenizer(text, add_special_tokens=special_tokens, return_offsets_mapping=True,
                        return_special_tokens_mask=True, verbose=False)
    ids = encoded["input_ids"]
    tokens = [Token(piece, i, None if special else s, None if special else e, bool(special))
              for piece, i, (s, e), special in zip(tokenizer.convert_ids_to_tokens(ids), ids,
                                                  encoded["offset_mapping"], encoded["special_tokens_mask"])]
    return Tokenized(str(model), tokens, tokenizer.decode(ids, skip_special_tokens=True))
