"""A Hugging Face `transformers` causal LM run in this process: no server, no key.

A card names a model id on the Hub (downloaded once by `transformers` into its own cache)
or a local folder written by `save_pretrained`:

    provider: transformers
    model: ./models/my-judge        # or Qwen/Qwen2.5-0.5B-Instruct
    max_tokens: 256
    temperature: null               # null: the model's own generation_config; 0: greedy

The weights are loaded on the first call, in a worker thread, on the first CUDA or MPS
device there is (else the CPU). Calls run one at a time (a model on one device gains
nothing from concurrent generate() calls, and its caches are not thread-safe), so
`max_concurrency` only queues them. Each call is seeded from the request, so a run is
reproducible on the same hardware and library versions. Text only; no log-probabilities.
Install with `pip install 'oversight[transformers]'`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
import transformers

from oversight.model.api import Capabilities, ModelAPI
from oversight.model.card import ModelCard
from oversight.model.types import GenerateRequest, GenerateResponse, ImagePart, ModelCallError, Usage


def _fingerprint(model: str) -> str:
    """For a local folder, a hash of its files' names, sizes and modification times: part
    of the cache key, so retrained weights saved to the same folder are never answered
    from the cache. Hub ids are pinned by the Hub's own cache and return ''."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return ""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


class TransformersAPI(ModelAPI):
    provider: ClassVar[str] = "transformers"
    default_capabilities: ClassVar[Capabilities] = Capabilities(images=False, logprobs=False)
    default_base_url: ClassVar[str | None] = None
    default_key_env: ClassVar[str | None] = None

    def __init__(self, card: ModelCard, api_key: str | None, http_client: Any = None) -> None:
        super().__init__(card, api_key, http_client)
        # Per model folder, so an instance value: the wrapper's cache key reads it from the instance.
        self.cache_version = _fingerprint(card.model)  # type: ignore[misc]
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = asyncio.Lock()
        self._run_lock = threading.Lock()

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        if any(isinstance(p, ImagePart) for m in request.messages for p in m.parts):
            raise ModelCallError("bad_request", f"{self.card.label} (transformers) reads text only")
        async with self._load_lock:
            if self._model is None:
                await asyncio.to_thread(self._load)
        start = time.perf_counter()
        try:
            texts, usage = await asyncio.to_thread(self._generate, request)
        except ModelCallError:
            raise
        except torch.cuda.OutOfMemoryError as exc:
            raise ModelCallError("server", f"out of device memory: {exc}") from None
        except (RuntimeError, ValueError) as exc:
            raise ModelCallError("other", f"{type(exc).__name__}: {exc}") from None
        return GenerateResponse(texts=texts, usage=usage, latency_s=time.perf_counter() - start)

    def _load(self) -> None:
        name = str(Path(self.card.model).expanduser()) if Path(self.card.model).expanduser().is_dir() \
            else self.card.model
        # transformers 5 calls it `dtype`; 4.x `torch_dtype`.
        dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        try:
            tokenizer: Any = transformers.AutoTokenizer.from_pretrained(name)
            model: Any = transformers.AutoModelForCausalLM.from_pretrained(name, **{dtype_key: "auto"})
        except OSError as exc:
            # Not found locally or on the Hub: every call would fail the same way.
            raise ModelCallError("not_found", f"cannot load {name!r}: {exc}") from None
        model.to(_device())
        model.eval()
        self._tokenizer, self._model = tokenizer, model

    def _prompt_ids(self, request: GenerateRequest) -> Any:
        tok = self._tokenizer
        messages = [{"role": m.role, "content": m.plain_text} for m in request.messages]
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        # A base model without a chat template: the roles as plain labels.
        text = "".join(f"{m['role']}: {m['content']}\n\n" for m in messages) + "assistant:"
        return tok(text, return_tensors="pt")["input_ids"]

    def _settings(self, request: GenerateRequest) -> dict[str, Any]:
        temperature = request.temperature if request.temperature is not None else self.card.temperature
        config = self._model.generation_config
        if temperature is None:
            # The model's own defaults, except that n > 1 independent samples need sampling.
            return {"do_sample": True} if request.n > 1 and not config.do_sample else {}
        if temperature == 0:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": temperature}

    def _generate(self, request: GenerateRequest) -> tuple[list[str], Usage]:
        tok, model = self._tokenizer, self._model
        ids = self._prompt_ids(request)
        max_new = request.max_tokens or self.card.max_tokens
        limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        if limit and ids.shape[1] + max_new > limit:
            raise ModelCallError(
                "bad_request",
                f"prompt of {ids.shape[1]} tokens plus max_tokens {max_new} exceeds the model's context of {limit}",
            )
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        identity = [request.messages_payload(), request.seed, request.replicate, request.sample]
        seed = int(hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:8], 16)
        with self._run_lock, torch.no_grad():
            torch.manual_seed(seed)  # under the lock: the global generator is shared
            out = model.generate(
                ids.to(model.device),
                attention_mask=torch.ones_like(ids).to(model.device),
                max_new_tokens=max_new,
                num_return_sequences=request.n,
                pad_token_id=pad,
                **self._settings(request),
            )
        new = out[:, ids.shape[1]:]
        texts, produced = [], 0
        for row in new:
            tokens = row.tolist()
            # Count up to and including the end-of-sequence token; padding after it is not output.
            if tok.eos_token_id is not None and tok.eos_token_id in tokens:
                tokens = tokens[: tokens.index(tok.eos_token_id) + 1]
            produced += len(tokens)
            texts.append(tok.decode(tokens, skip_special_tokens=True).strip())
        return texts, Usage(int(ids.shape[1]), produced)

    async def aclose(self) -> None:
        self._model = self._tokenizer = None
